"""Why an embedding file could not be read or written."""

from __future__ import annotations

from ..embedding import EmbeddingError


class EmbeddingFileError(EmbeddingError):
    """A file that cannot be used as an embedding; the message names the file, the problem and what to do."""


class UnsafeEmbeddingFileError(EmbeddingFileError):
    """A pickled file that would run code when loaded. It is refused before any of that code runs."""
