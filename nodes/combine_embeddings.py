"""Combine Embeddings: two or three words made one, their vectors concatenated or mixed with weights."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.combining import COMBINE_MODES, combine_embeddings, parse_weights
from ..textual_inversion_core.embedding import Embedding
from .socket_types import EmbeddingSocket


class CombineEmbeddings(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionCombineEmbeddings",
            display_name="Combine Embeddings",
            category="textual inversion",
            description="One new word from several of one model family: concatenate stacks their vectors (at "
            "most 75 in all); mix adds them vector by vector with weights (each must have as many vectors).",
            inputs=[
                EmbeddingSocket.Input("embedding_a"),
                EmbeddingSocket.Input("embedding_b"),
                EmbeddingSocket.Input("embedding_c", optional=True),
                io.Combo.Input(
                    "mode",
                    options=list(COMBINE_MODES),
                    default="concatenate",
                    tooltip="concatenate: a's vectors, then b's, then c's; mix: their weighted sum.",
                ),
                io.String.Input(
                    "weights",
                    default="",
                    tooltip="For mix: one weight per embedding, e.g. '0.5, 0.5'; empty gives each an equal share. "
                    "Concatenate ignores it.",
                ),
                io.String.Input("token", default="<combined>", tooltip="The new word, one word without spaces."),
            ],
            outputs=[EmbeddingSocket.Output("embedding", display_name="embedding")],
        )

    @classmethod
    def execute(cls, embedding_a: Embedding, embedding_b: Embedding, mode: str, weights: str, token: str,
                embedding_c: Embedding | None = None) -> io.NodeOutput:
        embeddings = {"embedding_a": embedding_a, "embedding_b": embedding_b}
        if embedding_c is not None:
            embeddings["embedding_c"] = embedding_c
        return io.NodeOutput(combine_embeddings(
            embeddings, mode, token.strip(), parse_weights(weights) if mode == "mix" else None
        ))
