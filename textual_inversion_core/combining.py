"""Several words made one: their vectors stacked one after another (concatenate), or added with weights (mix, as
AUTOMATIC1111's embedding inspector mixes them).

The inputs come labelled (a node's input names, say), so a refusal names the input at fault.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from .embedding import Embedding, EmbeddingError
from .families import MAX_VECTORS, display_name

COMBINE_MODES = ("concatenate", "mix")


def combine_embeddings(embeddings: Mapping[str, Embedding], mode: str, token: str,
                       weights: Sequence[float] | None = None) -> Embedding:
    """One word ``token`` from ``embeddings`` (label → embedding, in order), all of one family.

    ``concatenate`` stacks their vectors (at most 75 in all); ``mix`` needs the same number of vectors in each
    and sums them, each scaled by its weight (``weights``, one per embedding; None gives each an equal share).
    """
    if mode not in COMBINE_MODES:
        raise EmbeddingError(f"mode must be one of {', '.join(COMBINE_MODES)}, got {mode!r}.")
    check_one_family(embeddings)
    labels = list(embeddings)
    encoders = list(embeddings[labels[0]].vectors)
    sources = [{"label": label, "token": e.token, "num_vectors": e.num_vectors} for label, e in embeddings.items()]
    if mode == "concatenate":
        total = sum(e.num_vectors for e in embeddings.values())
        if total > MAX_VECTORS:
            counts = ", ".join(f"{label} {e.num_vectors}" for label, e in embeddings.items())
            raise EmbeddingError(f"Concatenated, the embeddings hold {total} vectors ({counts}); a word holds at most "
                                 f"{MAX_VECTORS}. Combine fewer or shorter embeddings, or mix them.")
        vectors = {name: torch.cat([e.vectors[name] for e in embeddings.values()]) for name in encoders}
        return Embedding(token, vectors, {"combined": "concatenate", "sources": sources})
    counts = {e.num_vectors for e in embeddings.values()}
    if len(counts) > 1:
        listed = ", ".join(f"{label} has {e.num_vectors}" for label, e in embeddings.items())
        raise EmbeddingError(f"mix adds the embeddings vector by vector, so each needs the same number of vectors; "
                             f"{listed}. Concatenate them instead, or pick embeddings of one length.")
    weights = mix_weights(weights, len(embeddings))
    vectors = {name: sum(w * e.vectors[name] for w, e in zip(weights, embeddings.values())) for name in encoders}
    return Embedding(token, vectors, {"combined": "mix", "sources": sources, "weights": weights})


def check_one_family(embeddings: Mapping[str, Embedding]) -> None:
    """Raise unless every embedding has vectors for the same text encoders; the message names the odd one."""
    if not embeddings:
        raise EmbeddingError("Nothing to combine: give at least one embedding.")
    (first_label, first), *others = embeddings.items()
    for label, embedding in others:
        if set(embedding.vectors) != set(first.vectors):
            raise EmbeddingError(
                f"{label} ({embedding.token!r}) is for {family_words(embedding)}, but {first_label} "
                f"({first.token!r}) is for {family_words(first)}; combine embeddings of one model family."
            )


def family_words(embedding: Embedding) -> str:
    return f"{display_name(embedding.family)} ({', '.join(embedding.vectors)})"


def mix_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise EmbeddingError(f"mix needs one weight per embedding: {count} embeddings, {len(weights)} weights "
                             f"({', '.join(map(str, weights))}).")
    if not all(math.isfinite(w) for w in weights):
        raise EmbeddingError(f"mix weights must be finite numbers, got {', '.join(map(str, weights))}.")
    return [float(w) for w in weights]


def parse_weights(text: str) -> list[float] | None:
    """``"0.5, 0.5"`` → ``[0.5, 0.5]``; empty → None (equal shares)."""
    pieces = [piece.strip() for piece in text.split(",")]
    if not any(pieces):
        return None
    try:
        return [float(piece) for piece in pieces]
    except ValueError:
        raise EmbeddingError(
            f"weights must be numbers separated by commas, e.g. '0.5, 0.5', got {text!r}; leave it empty for "
            "equal shares."
        ) from None
