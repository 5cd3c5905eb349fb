"""Inspect Embedding: what a word's vectors are (their norms, nearest words, family) and, given a CLIP and a
prompt, how the prompt tokenizes with the word applied."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.embedding import Embedding
from ..textual_inversion_core.inspection import inspect_embedding, model_fit
from .comfy_host.inspection import clip_vocabularies, prompt_placement
from .socket_types import EmbeddingSocket


class InspectEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionInspectEmbedding",
            display_name="Inspect Embedding",
            category="textual inversion",
            description="A report on an embedding: its text encoders and vectors, each vector's norm against "
            "the vocabulary's typical token and its nearest words, the model family it fits, and how a prompt "
            "tokenizes with the word in it.",
            is_output_node=True,
            inputs=[
                EmbeddingSocket.Input("embedding"),
                io.Clip.Input(
                    "clip",
                    optional=True,
                    tooltip="The CLIP the word is for: its vocabulary gives the norms a scale and the nearest words.",
                ),
                io.String.Input(
                    "prompt",
                    multiline=True,
                    default="",
                    optional=True,
                    tooltip="A prompt with the word in it (needs the CLIP): whether the word is found, the tokens "
                    "used of 75, and which 77-token chunk holds it.",
                ),
            ],
            outputs=[io.String.Output("report", display_name="report")],
        )

    @classmethod
    def execute(cls, embedding: Embedding, clip=None, prompt: str = "") -> io.NodeOutput:
        vocabularies = None if clip is None else clip_vocabularies(clip)
        placement = None
        if clip is not None and prompt.strip() and model_fit(embedding, list(vocabularies)) is None:
            placement = prompt_placement(clip, embedding, prompt)
        report = inspect_embedding(embedding, vocabularies, placement).text()
        if prompt.strip() and clip is None:
            report += "\nThe prompt is tokenized only with a CLIP: connect the one the word is for."
        return io.NodeOutput(report, ui={"text": [report]})
