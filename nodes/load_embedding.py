"""Load Embedding: any common embedding file from ComfyUI's embeddings folders."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.formats import load_embedding
from .comfy_host.embedding_folders import embedding_file_names, embedding_path, file_fingerprint
from .socket_types import EmbeddingSocket


class LoadEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionLoadEmbedding",
            display_name="Load Embedding",
            category="textual inversion",
            description="An embedding file from ComfyUI's embeddings folders, in any common format "
            "(safetensors, A1111 .pt, diffusers .bin, A1111 PNG/WebP).",
            inputs=[
                io.Combo.Input("embedding_name", options=embedding_file_names()),
                io.String.Input(
                    "token",
                    default="",
                    optional=True,
                    tooltip="The word to write in prompts; empty uses the file's own token, else its name.",
                ),
            ],
            outputs=[EmbeddingSocket.Output("embedding", display_name="embedding")],
        )

    @classmethod
    def fingerprint_inputs(cls, embedding_name, token=""):
        return file_fingerprint(embedding_path, embedding_name, token)

    @classmethod
    def execute(cls, embedding_name: str, token: str = "") -> io.NodeOutput:
        return io.NodeOutput(load_embedding(embedding_path(embedding_name), token=token.strip() or None))
