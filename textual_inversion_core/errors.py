"""What went wrong, by meaning: input the user can fix, as opposed to a bug.

Every error the user can act on derives from ``UserError``; its message says what is wrong, where (the file,
folder or field) and what to do. The command line and the nodes show such an error as that message alone.
Anything else that escapes is a bug and surfaces with its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Input that cannot work as given; the message names it and says what to do.

    (A ``ValueError``, so callers that have always caught ``ValueError`` for bad input keep doing so.)
    """


class ConfigError(UserError):
    """A training setting that cannot work; the message names the field."""


class ModelError(UserError):
    """A model folder or model object that cannot be trained on or used as given."""


class ModelNotFound(ModelError, FileNotFoundError):
    """No model where the user pointed."""
