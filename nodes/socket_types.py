"""The custom socket type the nodes pass a learned word along: a ``textual_inversion_core`` Embedding."""

from comfy_api.latest import io

EmbeddingSocket = io.Custom("TEXTUAL_INVERSION_EMBEDDING")
