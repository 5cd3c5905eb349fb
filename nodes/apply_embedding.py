"""Apply Embedding: a CLIP on which the bare pseudo-word resolves to the embedding's vectors in any prompt."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.embedding import Embedding
from .comfy_host.pseudo_words import clip_with_word
from .socket_types import EmbeddingSocket


class ApplyEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionApplyEmbedding",
            display_name="Apply Embedding",
            category="textual inversion",
            description="Teach the CLIP a word: in every CLIP Text Encode downstream, the token (e.g. <my-cat>, "
            "also weighted as (<my-cat>:1.2)) stands for the embedding. Chain several for several words.",
            inputs=[
                io.Clip.Input("clip"),
                EmbeddingSocket.Input("embedding"),
                io.String.Input(
                    "token",
                    default="",
                    optional=True,
                    tooltip="The word to write in prompts instead of the embedding's own token; empty keeps it.",
                ),
            ],
            outputs=[io.Clip.Output("clip", display_name="clip")],
        )

    @classmethod
    def execute(cls, clip, embedding: Embedding, token: str = "") -> io.NodeOutput:
        if token.strip():
            embedding = embedding.with_token(token.strip())
        return io.NodeOutput(clip_with_word(clip, embedding))
