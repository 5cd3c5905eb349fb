"""Save Embedding: the word as .safetensors in ComfyUI's embeddings folder, so ``embedding:<name>`` works too."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.embedding import Embedding
from .comfy_host.embedding_folders import display_path, save_new_embedding_file
from .socket_types import EmbeddingSocket


class SaveEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionSaveEmbedding",
            display_name="Save Embedding",
            category="textual inversion",
            description="Write the embedding as .safetensors into ComfyUI's embeddings folder; prompts can then "
            "also use it as embedding:<name>. Existing files are never overwritten.",
            is_output_node=True,
            inputs=[
                EmbeddingSocket.Input("embedding"),
                io.String.Input(
                    "filename_prefix",
                    default="",
                    tooltip="The file name (subfolders allowed); empty uses the token, '<my-cat>' giving "
                    "'my-cat.safetensors'. A number is added if the name is taken.",
                ),
            ],
            outputs=[],
        )

    @classmethod
    def execute(cls, embedding: Embedding, filename_prefix: str = "") -> io.NodeOutput:
        path = save_new_embedding_file(embedding, filename_prefix.strip() or embedding.token)
        shown = display_path(path)
        return io.NodeOutput(ui={"text": [shown]})
