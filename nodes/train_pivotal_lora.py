"""Train Pivotal LoRA: after Train Embedding, a small LoRA on the UNet trained around the learned word."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.embedding import Embedding
from ..textual_inversion_core.errors import ConfigError
from ..textual_inversion_core.formats.pivotal_lora import pivotal_lora_state
from ..textual_inversion_core.lora import LAYER_SETS, PivotalLora, Snapshot
from ..textual_inversion_core.templates import TEMPLATE_KINDS
from ..textual_inversion_core.training import TrainingConfig
from ..textual_inversion_core.validation import DEFAULT_GUIDANCE, Validation, validation_prompts
from .comfy_host.adapted_model import adapted
from .comfy_host.images import concept_images
from .run_training import loss_graph, run_training
from .socket_types import EmbeddingSocket, LoraModelSocket, PivotalLoraSocket

DEFAULT_LORA_STEPS = 500


class TrainPivotalLora(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionTrainPivotalLora",
            display_name="Train Pivotal LoRA",
            category="textual inversion",
            description="Pivotal tuning: with a word learned by Train Embedding, train a small LoRA on the UNet "
            "around it (the word in every prompt, kept fixed by default), for detail the frozen model cannot "
            "draw from a word alone. Returns the MODEL with the LoRA and the CLIP with the word.",
            inputs=[
                io.Model.Input("model"),
                io.Clip.Input("clip"),
                io.Vae.Input("vae"),
                io.Image.Input("images", tooltip="The concept's pictures, the ones the word was trained on."),
                EmbeddingSocket.Input("embedding", tooltip="The learned word (Train Embedding or Load Embedding)."),
                io.Int.Input("steps", default=DEFAULT_LORA_STEPS, min=1, max=1_000_000,
                             tooltip="LoRA steps after the word's own; a few hundred are typical."),
                io.Int.Input("rank", default=4, min=1, max=128,
                             tooltip="The LoRA's rank: how much it can change; higher learns more and forgets "
                             "more of what the model drew before."),
                io.Float.Input("learning_rate", default=1e-4, min=1e-7, max=1.0, step=1e-5, round=False),
                io.Combo.Input("template", options=list(TEMPLATE_KINDS), default="object",
                               tooltip="The prompts, as for Train Embedding: object, style, or captions."),
                io.Int.Input("batch_size", default=1, min=1, max=64, tooltip="Pictures per step."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False),
                io.String.Input("captions", optional=True, force_input=True,
                                tooltip="One line per picture (from Load Concept Images); used by the captions "
                                "template."),
                io.Float.Input("word_learning_rate", default=0.0, min=0.0, max=1.0, step=1e-4, round=False,
                               optional=True,
                               tooltip="The word's learning rate during this stage: 0 keeps it as trained; a "
                               "small rate (e.g. 1e-4) lets it move with the LoRA."),
                io.Combo.Input("layers", options=list(LAYER_SETS), default="attention", optional=True,
                               tooltip="The layers the LoRA adapts: the UNet's attention projections, those and "
                               "its feed-forward layers, or those and the text encoders' attention."),
                io.Mask.Input("masks", optional=True,
                              tooltip="Where the concept is in each picture, as for Train Embedding."),
                io.Int.Input("preview_every", default=0, min=0, max=1_000_000, optional=True,
                             tooltip="Validate every this many steps, shown on the node; 0 turns previews off."),
                io.String.Input("preview_prompt", default="", multiline=True, optional=True,
                                tooltip="The validation prompts, one per line; empty uses 'a photo of <token>'."),
                io.String.Input("preview_negative", default="", optional=True,
                                tooltip="The validation's negative prompt."),
                io.Float.Input("preview_cfg", default=DEFAULT_GUIDANCE, min=1.0, max=30.0, step=0.5, optional=True,
                               tooltip="The validation's CFG scale."),
                PivotalLoraSocket.Input("resume", optional=True,
                                        tooltip="Go on training this pivotal LoRA (e.g. a stopped or loaded one)."),
            ],
            outputs=[
                io.Model.Output("model", display_name="model", tooltip="The MODEL with the LoRA applied."),
                io.Clip.Output("clip", display_name="clip", tooltip="The CLIP on which the word resolves."),
                PivotalLoraSocket.Output("pivotal_lora", display_name="pivotal_lora",
                                         tooltip="The word and its LoRA, for Save Pivotal LoRA."),
                LoraModelSocket.Output("lora", display_name="lora",
                                       tooltip="The LoRA's weights (the word bundled) for ComfyUI's own LoRA nodes "
                                       "(Load LoRA Model, Save LoRA Weights)."),
                io.Image.Output("loss_graph", display_name="loss_graph"),
            ],
        )

    @classmethod
    def validate_inputs(cls, steps, rank, learning_rate) -> bool | str:
        defaults = {w.id: w.default for w in cls.define_schema().inputs if w.id in ("steps", "rank", "learning_rate")}
        try:
            pivotal_config(None, defaults["steps"] if steps is None else steps,
                           defaults["rank"] if rank is None else rank,
                           defaults["learning_rate"] if learning_rate is None else learning_rate)
        except ConfigError as error:
            return str(error)
        return True

    @classmethod
    def execute(cls, model, clip, vae, images, embedding: Embedding, steps, rank, learning_rate, template,
                batch_size, seed, captions="", word_learning_rate=0.0, layers="attention", masks=None,
                preview_every=0, preview_prompt="", preview_negative="", preview_cfg=DEFAULT_GUIDANCE,
                resume: PivotalLora | None = None) -> io.NodeOutput:
        start = resume if resume is not None else embedding
        config = pivotal_config(start, steps, rank, learning_rate, template, batch_size, seed, word_learning_rate,
                                layers, preview_every)
        pictures = concept_images(images, captions or "", masks)
        validation = Validation(validation_prompts(preview_prompt, config.token), preview_negative, preview_cfg)
        result = run_training(model, clip, vae, pictures, config, start, validation, seed, keep_previewed=False)
        lora = result.lora
        return io.NodeOutput(*adapted(model, clip, lora), lora, pivotal_lora_state(lora), loss_graph(result, config))


def pivotal_config(start: Snapshot | None, steps: int, rank: int, learning_rate: float,
                   template: str = "object", batch_size: int = 1, seed: int = 0, word_learning_rate: float = 0.0,
                   layers: str = "attention", preview_every: int = 0) -> TrainingConfig:
    """The LoRA stage after ``start``'s own steps; ``ConfigError`` names the first setting that cannot work."""
    metadata = start.metadata if start is not None else {}
    return TrainingConfig(
        token=start.token if start is not None else "<word>", init_text=metadata.get("init_text") or "object",
        num_vectors=start.num_vectors if start is not None else 1,
        steps=int(metadata.get("steps", 0)), lora_steps=steps, lora_rank=rank, lora_learning_rate=learning_rate,
        lora_word_learning_rate=word_learning_rate, lora_layers=layers, template=template, batch_size=batch_size,
        seed=seed, preview_every=preview_every,
    )
