"""What went wrong, by meaning: input the user can fix, as opposed to a bug.

Every error the user can act on derives from ``UserError``; its message says what is wrong, where (the file,
folder or field) and what to do. The command line and the nodes show such an error as that message alone.
Anything else that escapes is a bug and surfaces with its traceback.

A host may import this package inside one of its own: ComfyUI imports a custom node under its folder's path, so
``ConceptDataError`` would live in ``/…/custom_nodes/comfyui-textual-inversion.textual_inversion_core.data``, and
ComfyUI titles an error by its class's module and name. Every user error is therefore named by its place in this
project (``textual_inversion_core.data.ConceptDataError``) however it was imported.
"""

from __future__ import annotations

# The package this project was imported inside of, with its dot: "" when imported on its own.
_HOST_PACKAGE = __package__.rpartition(".")[0] + "." if "." in __package__ else ""


def _name_within_project(cls: type) -> None:
    if _HOST_PACKAGE and cls.__module__.startswith(_HOST_PACKAGE):
        cls.__module__ = cls.__module__[len(_HOST_PACKAGE):]


class UserError(ValueError):
    """Input that cannot work as given; the message names it and says what to do.

    (A ``ValueError``, so callers that have always caught ``ValueError`` for bad input keep doing so.)
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _name_within_project(cls)


_name_within_project(UserError)


class ConfigError(UserError):
    """A training setting that cannot work; the message names the field."""


class ModelError(UserError):
    """A model folder or model object that cannot be trained on or used as given."""


class ModelNotFound(ModelError, FileNotFoundError):
    """No model where the user pointed."""
