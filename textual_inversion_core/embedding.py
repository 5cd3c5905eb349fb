"""The learned pseudo-word: the one value that flows from the trainer to every file format and host."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from .errors import UserError
from .families import ENCODER_WIDTHS, MAX_VECTORS, display_name, family_of, get_family


class EmbeddingError(UserError):
    """An embedding that cannot be used as given; the message says what is wrong and what to do."""


@dataclasses.dataclass(frozen=True)
class Embedding:
    """A pseudo-word and its vectors for each text encoder of one base-model family.

    ``vectors`` maps an encoder name (``clip_l``, ``clip_h``, ``clip_g``) to a float32 tensor of shape
    ``[n, width]``; every encoder holds the same number ``n`` of vectors. ``metadata`` carries what is known
    of how the word was made (init text, steps, learning rate, family, base-model hash, loss summary).
    """

    token: str
    vectors: Mapping[str, torch.Tensor]
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_word(self.token, self.vectors)
        cleaned: dict[str, torch.Tensor] = {}
        # In the one order every message and summary lists encoders in, whatever order a file held them in.
        for name in sorted(self.vectors, key=list(ENCODER_WIDTHS).index):
            tensor = self.vectors[name].detach().to(device="cpu", dtype=torch.float32).contiguous()
            if not torch.isfinite(tensor).all():
                raise EmbeddingError(f"The vectors for {name} of {self.token!r} contain NaN or infinite values.")
            cleaned[name] = tensor
        # Frozen dataclass: normalise the fields once, here, so everything downstream can rely on them.
        object.__setattr__(self, "vectors", cleaned)
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def num_vectors(self) -> int:
        return next(iter(self.vectors.values())).shape[0]

    @property
    def family(self) -> str | None:
        """``sd1``, ``sd2`` or ``sdxl`` from the encoders present; None for an unusual combination."""
        return family_of(frozenset(self.vectors))

    def with_token(self, token: str) -> "Embedding":
        return dataclasses.replace(self, token=token)

    def with_metadata(self, **updates: Any) -> "Embedding":
        return dataclasses.replace(self, metadata={**self.metadata, **updates})

    def check_family(self, family: str, where: str | None = None) -> None:
        """Raise a clear error unless this embedding has vectors for exactly the text encoders of ``family``;
        ``where`` (a file, a node) starts the message."""
        check_fits_family(self.token, self.vectors, family, where)


def check_word(token: str, vectors: Mapping[str, torch.Tensor]) -> int:
    """Raise EmbeddingError unless ``token`` is one word and ``vectors`` are ``[n, width]`` tensors of known
    text encoders, each with the same ``n`` (1 to 75); returns ``n``. Reads shapes only, so it costs nothing on
    tensors that train."""
    if not isinstance(token, str) or not token.strip():
        raise EmbeddingError("An embedding needs a non-empty token (the pseudo-word, e.g. '<my-cat>').")
    if any(c.isspace() for c in token):
        raise EmbeddingError(
            f"The token {token!r} contains white space; a pseudo-word must be a single word (e.g. '<my-cat>')."
        )
    if not vectors:
        raise EmbeddingError(f"The embedding {token!r} has no vectors.")
    for name, tensor in vectors.items():
        if name not in ENCODER_WIDTHS:
            raise EmbeddingError(
                f"Unknown text encoder {name!r} in embedding {token!r}; expected one of {', '.join(ENCODER_WIDTHS)}."
            )
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise EmbeddingError(f"Vectors for {name} must be a 2-D tensor [n, width], got {shape}.")
        width = ENCODER_WIDTHS[name]
        if tensor.shape[1] != width:
            raise EmbeddingError(
                f"Vectors for {name} must be {width} wide, got {tensor.shape[1]} "
                f"(was this embedding made for another model family?)."
            )
        if not 1 <= tensor.shape[0] <= MAX_VECTORS:
            raise EmbeddingError(
                f"The embedding {token!r} has {tensor.shape[0]} vectors for {name}; a word needs 1 to {MAX_VECTORS}."
            )
    counts = {tensor.shape[0] for tensor in vectors.values()}
    if len(counts) != 1:
        raise EmbeddingError(
            f"Every text encoder must hold the same number of vectors; {token!r} has "
            + ", ".join(f"{name}: {t.shape[0]}" for name, t in vectors.items())
            + "."
        )
    return counts.pop()


def check_fits_family(token: str, vectors: Mapping[str, torch.Tensor], family: str, where: str | None = None) -> None:
    """Raise EmbeddingError unless ``vectors`` are for exactly the text encoders of ``family``; ``where`` (a file,
    a node) starts the message."""
    wanted = get_family(family)
    missing = [name for name in wanted.encoders if name not in vectors]
    extra = sorted(set(vectors) - set(wanted.encoders))
    if missing:
        have = ", ".join(f"{n} ({t.shape[1]} wide)" for n, t in vectors.items())
        problem = (f"The embedding {token!r} has vectors for {have}, but a {wanted.display_name} model "
                   f"needs {' and '.join(wanted.encoders)}.")
    elif extra:
        problem = (f"The embedding {token!r} was made for {display_name(family_of(vectors))} (it also has "
                   f"{', '.join(extra)} vectors), not for {wanted.display_name}.")
    else:
        return
    prefix = f"{where}: " if where else ""
    raise EmbeddingError(f"{prefix}{problem} Use an embedding made for {wanted.display_name}.")
