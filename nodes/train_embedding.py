"""Train Embedding: learn a new word for a concept from its pictures, with the MODEL/CLIP/VAE ComfyUI loaded."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.embedding import Embedding
from ..textual_inversion_core.errors import ConfigError
from ..textual_inversion_core.families import MAX_VECTORS
from ..textual_inversion_core.templates import TEMPLATE_KINDS
from ..textual_inversion_core.training import DEFAULT_LEARNING_RATE, DEFAULT_STEPS, TrainingConfig
from ..textual_inversion_core.training.norm_control import NORM_CONTROLS
from ..textual_inversion_core.validation import DEFAULT_GUIDANCE, Validation, validation_prompts
from .comfy_host.images import concept_images
from .run_training import loss_graph, run_training
from .socket_types import EmbeddingSocket


class TrainEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionTrainEmbedding",
            display_name="Train Embedding",
            category="textual inversion",
            description="Textual inversion: learn the vectors of a new word (e.g. <my-cat>) from 3-5 pictures, "
            "with the model frozen. Use the word after Apply Embedding, or save it with Save Embedding.",
            inputs=[
                io.Model.Input("model"),
                io.Clip.Input("clip"),
                io.Vae.Input("vae"),
                io.Image.Input("images", tooltip="The pictures of the concept, all the same size."),
                io.String.Input(
                    "token",
                    default="<my-concept>",
                    tooltip="The new word, one word without spaces; angle brackets keep it from clashing with "
                    "real words.",
                ),
                io.String.Input(
                    "init_text",
                    default="object",
                    tooltip="A plain word for what the concept roughly is ('cat', 'painting'); the new word "
                    "starts from its meaning.",
                ),
                io.Int.Input(
                    "num_vectors",
                    default=1,
                    min=1,
                    max=MAX_VECTORS,
                    tooltip="How many token slots the word takes; more can hold more detail but each uses up "
                    "one of a prompt's 75 tokens.",
                ),
                io.Combo.Input(
                    "template",
                    options=list(TEMPLATE_KINDS),
                    default="object",
                    tooltip="object: 'a photo of a <word>'-style prompts; style: 'a painting in the style of "
                    "<word>'; captions: each picture's caption (where it names [name] or the word, else "
                    "'<word>, caption').",
                ),
                io.Int.Input(
                    "steps",
                    default=DEFAULT_STEPS,
                    min=1,
                    max=1_000_000,
                    tooltip="Total optimisation steps; when resuming, training goes on from the embedding's "
                    "own step count up to this number.",
                ),
                io.Float.Input(
                    "learning_rate", default=DEFAULT_LEARNING_RATE, min=1e-6, max=1.0, step=0.0001, round=False
                ),
                io.Int.Input("batch_size", default=1, min=1, max=64, tooltip="Pictures per step."),
                # Declared explicitly: the frontend otherwise adds a "control after generate" widget to any
                # input named seed, which would re-randomise a training run on every queue and shift the saved
                # widget values of shared workflows.
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False),
                io.String.Input(
                    "captions",
                    optional=True,
                    force_input=True,
                    tooltip="One line per picture (from Load Concept Images); used by the captions template.",
                ),
                EmbeddingSocket.Input(
                    "resume", optional=True, tooltip="Go on training this embedding (e.g. a saved or stopped one)."
                ),
                io.Int.Input(
                    "preview_every",
                    default=0,
                    min=0,
                    max=1_000_000,
                    optional=True,
                    tooltip="Validate every this many steps: render the preview prompts with the word so far, "
                    "shown on the node with the step they came from; 0 turns previews off.",
                ),
                io.String.Input(
                    "preview_prompt",
                    default="",
                    multiline=True,
                    optional=True,
                    tooltip="The validation prompts, one per line, with the token written as usual ([name] also "
                    "works); empty uses 'a photo of <token>'. Each is rendered with the same seed every time.",
                ),
                io.Mask.Input(
                    "masks",
                    optional=True,
                    tooltip="Where the concept is in each picture (white) and what to ignore (black): the loss "
                    "counts only inside, so the pictures' backgrounds are not learned into the word. One mask per "
                    "picture or one for all, e.g. from a background-removal node; Load Image's mask is white "
                    "where the picture is transparent, so put Invert Mask after it.",
                ),
                io.Float.Input(
                    "unmasked_weight",
                    default=0.0,
                    min=0.0,
                    max=1.0,
                    step=0.05,
                    optional=True,
                    tooltip="With masks: how much the loss outside them still counts (0: not at all, 1: as much "
                    "as inside, as if there were no masks).",
                ),
                io.Combo.Input(
                    "norm_control",
                    options=list(NORM_CONTROLS),
                    default="off",
                    optional=True,
                    tooltip="Keeps the word's vectors the size of real words, so the word does not drown the "
                    "rest of a prompt. rescale: back to the vocabulary's median norm after every step; penalty: "
                    "a loss term pulling each vector's norm towards the init word's (norm_penalty sets its "
                    "weight). Off by default: on the concept world both made the words worse (edits that keep the "
                    "concept 0.19 against 0.35 off, reconstruction 0.62-0.68 against 0.81).",
                ),
                io.Float.Input(
                    "norm_penalty", default=0.1, min=0.0, max=100.0, step=0.01, optional=True,
                    tooltip="The weight of the norm penalty (norm_control penalty).",
                ),
                io.String.Input(
                    "preview_negative", default="", optional=True,
                    tooltip="The validation's negative prompt.",
                ),
                io.Float.Input(
                    "preview_cfg", default=DEFAULT_GUIDANCE, min=1.0, max=30.0, step=0.5, optional=True,
                    tooltip="The validation's CFG scale.",
                ),
                io.Boolean.Input(
                    "keep_previewed_words", default=False, optional=True,
                    tooltip="Save the word of every validation step as embeddings/<token>_step<N>, to pick the "
                    "best step afterwards with Load Embedding; existing files are never overwritten.",
                ),
                io.Boolean.Input(
                    "compile", default=False, optional=True,
                    tooltip="Run the UNet's training passes through torch.compile (needs a C++ compiler on a CPU, "
                    "Triton on a GPU): minutes of compiling before the first step. On a CPU it made an SD1.5 "
                    "step slower (2.0 s against 1.7 s after 159 s of compiling) and only small models faster; "
                    "leave it off there. The MODEL itself is not changed; samplers use it as before.",
                ),
            ],
            outputs=[
                EmbeddingSocket.Output("embedding", display_name="embedding"),
                io.Image.Output("loss_graph", display_name="loss_graph"),
            ],
        )

    @classmethod
    def validate_inputs(cls, token, init_text, num_vectors, template, steps, learning_rate) -> bool | str:
        """Refuse settings that cannot work when the prompt is queued, before any model loads.

        ComfyUI leaves the inputs named here to this check alone (it skips their min, max and choices) and
        lists a refusal once under each of them; TrainingConfig's message names the field at fault. An input fed
        by a link has no value yet (None): its widget's default stands in, so the others are still checked, and
        execute() checks the real value before training.
        """
        given = dict(token=token, init_text=init_text, num_vectors=num_vectors, template=template, steps=steps,
                     learning_rate=learning_rate)
        defaults = {widget.id: widget.default for widget in cls.define_schema().inputs if widget.id in given}
        try:
            training_config(**{name: defaults[name] if value is None else value for name, value in given.items()})
        except ConfigError as error:
            return str(error)
        return True

    @classmethod
    def execute(cls, model, clip, vae, images, token, init_text, num_vectors, template, steps, learning_rate,
                batch_size, seed, captions="", resume: Embedding | None = None, preview_every=0,
                preview_prompt="", masks=None, unmasked_weight=0.0, norm_control="off",
                norm_penalty=0.1, preview_negative="", preview_cfg=DEFAULT_GUIDANCE,
                keep_previewed_words=False, compile=False) -> io.NodeOutput:
        config = training_config(token, init_text, num_vectors, template, steps, learning_rate, batch_size, seed,
                                 preview_every, norm_control, norm_penalty, unmasked_weight)
        pictures = concept_images(images, captions or "", masks)
        validation = Validation(validation_prompts(preview_prompt, config.token), preview_negative, preview_cfg)
        result = run_training(model, clip, vae, pictures, config, resume, validation, seed, keep_previewed_words,
                              compile)
        return io.NodeOutput(result.embedding, loss_graph(result, config))


def training_config(token, init_text, num_vectors, template, steps, learning_rate, batch_size=1, seed=0,
                    preview_every=0, norm_control="off", norm_penalty=0.1, unmasked_weight=0.0) -> TrainingConfig:
    """The run's settings from the node's widgets; ``ConfigError`` names the first that cannot work."""
    return TrainingConfig(
        token=token.strip(), init_text=init_text.strip(), num_vectors=num_vectors, steps=steps,
        learning_rate=learning_rate, batch_size=batch_size, template=template, seed=seed, preview_every=preview_every,
        norm_control=norm_control, norm_penalty=norm_penalty, unmasked_weight=unmasked_weight,
    )
