"""Evaluate Embedding: the paper's reconstruction score inside ComfyUI, with the CLIP vision model users already
have for IP-Adapter."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.evaluation import score_reconstruction


class EvaluateEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionEvaluateEmbedding",
            display_name="Evaluate Embedding",
            category="textual inversion",
            description="How much pictures made with the word look like the concept: the mean CLIP image "
            "similarity between them and the concept's own pictures (the paper's reconstruction score), beside "
            "the same figure for pictures made with the init word instead.",
            is_output_node=True,
            inputs=[
                io.ClipVision.Input(
                    "clip_vision", tooltip="A CLIP vision model from Load CLIP Vision (e.g. the ViT-L or ViT-H ones "
                    "IP-Adapter uses)."
                ),
                io.Image.Input("concept_images", tooltip="The concept's own pictures, e.g. the training pictures."),
                io.Image.Input(
                    "generated",
                    tooltip="Pictures made with the word ('a photo of <my-cat>'), several seeds in one batch.",
                ),
                io.Image.Input(
                    "init_generated",
                    tooltip="The same prompts and seeds with the init word in place of the word ('a photo of "
                    "cat'): the score to beat.",
                ),
            ],
            outputs=[
                io.Float.Output("similarity", display_name="similarity"),
                io.Float.Output("init_similarity", display_name="init_similarity"),
                io.String.Output("report", display_name="report"),
            ],
        )

    @classmethod
    def execute(cls, clip_vision, concept_images, generated, init_generated) -> io.NodeOutput:
        def extract(images):
            return clip_vision.encode_image(images).image_embeds

        score = score_reconstruction(extract, generated, init_generated, concept_images)
        report = score.text()
        return io.NodeOutput(score.similarity, score.init_similarity, report, ui={"text": [report]})
