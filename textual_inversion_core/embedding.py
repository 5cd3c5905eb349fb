"""The learned pseudo-word: the one value that flows from the trainer to every file format and host."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

# Text encoders by the name every file format and host agrees on, with their token-embedding width.
ENCODER_WIDTHS: dict[str, int] = {"clip_l": 768, "clip_h": 1024, "clip_g": 1280}

# Which encoders each base-model family conditions on, in the order their outputs are concatenated.
FAMILY_ENCODERS: dict[str, tuple[str, ...]] = {
    "sd1": ("clip_l",),
    "sd2": ("clip_h",),
    "sdxl": ("clip_l", "clip_g"),
}

# A CLIP prompt holds 75 tokens between its start and end markers; a word longer than that can never be used.
MAX_VECTORS = 75


class EmbeddingError(ValueError):
    """An embedding that cannot be used as given; the message says what is wrong and what to do."""


def family_of(encoder_names: set[str] | frozenset[str]) -> str | None:
    """The base-model family whose text encoders are exactly these, or None if no family matches."""
    for family, names in FAMILY_ENCODERS.items():
        if set(names) == set(encoder_names):
            return family
    return None


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
        if not isinstance(self.token, str) or not self.token.strip():
            raise EmbeddingError("An embedding needs a non-empty token (the pseudo-word, e.g. '<my-cat>').")
        if any(c.isspace() for c in self.token):
            raise EmbeddingError(
                f"The token {self.token!r} contains white space; a pseudo-word must be a single word "
                "(e.g. '<my-cat>')."
            )
        if not self.vectors:
            raise EmbeddingError(f"The embedding {self.token!r} has no vectors.")
        cleaned: dict[str, torch.Tensor] = {}
        counts = set()
        for name, tensor in self.vectors.items():
            if name not in ENCODER_WIDTHS:
                raise EmbeddingError(
                    f"Unknown text encoder {name!r} in embedding {self.token!r}; "
                    f"expected one of {', '.join(ENCODER_WIDTHS)}."
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
            n = tensor.shape[0]
            if not 1 <= n <= MAX_VECTORS:
                raise EmbeddingError(
                    f"The embedding {self.token!r} has {n} vectors for {name}; a word needs 1 to {MAX_VECTORS}."
                )
            tensor = tensor.detach().to(device="cpu", dtype=torch.float32).contiguous()
            if not torch.isfinite(tensor).all():
                raise EmbeddingError(f"The vectors for {name} of {self.token!r} contain NaN or infinite values.")
            cleaned[name] = tensor
            counts.add(n)
        if len(counts) != 1:
            raise EmbeddingError(
                f"Every text encoder must hold the same number of vectors; {self.token!r} has "
                + ", ".join(f"{name}: {t.shape[0]}" for name, t in cleaned.items())
                + "."
            )
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

    def check_family(self, family: str) -> None:
        """Raise a clear error if this embedding cannot be used with a model of ``family``."""
        wanted = FAMILY_ENCODERS[family]
        missing = [name for name in wanted if name not in self.vectors]
        if missing:
            have = ", ".join(f"{n} ({t.shape[1]} wide)" for n, t in self.vectors.items())
            raise EmbeddingError(
                f"The embedding {self.token!r} has vectors for {have}, but a {family.upper()} model needs "
                f"{' and '.join(wanted)}. Use an embedding made for {family.upper()}."
            )
