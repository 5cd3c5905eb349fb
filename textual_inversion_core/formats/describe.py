"""A plain-data summary of an embedding, for ``info --json`` and for showing in a user interface."""

from __future__ import annotations

from typing import Any

from ..embedding import Embedding


def describe_embedding(embedding: Embedding) -> dict[str, Any]:
    """``token``, ``family`` (None for an unusual set of encoders), ``num_vectors``, ``widths`` per encoder,
    and ``metadata``: only JSON types, ready for ``json.dumps``."""
    return {
        "token": embedding.token,
        "family": embedding.family,
        "num_vectors": embedding.num_vectors,
        "widths": {name: int(tensor.shape[1]) for name, tensor in embedding.vectors.items()},
        "metadata": dict(embedding.metadata),
    }
