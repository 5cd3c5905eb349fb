"""Load Pivotal LoRA: a word and its LoRA from the loras folder, both applied in one node."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.formats.pivotal_lora import load_pivotal_lora
from .comfy_host.adapted_model import adapted
from .comfy_host.embedding_folders import file_fingerprint
from .comfy_host.lora_folders import lora_file_names, lora_path
from .socket_types import EmbeddingSocket, PivotalLoraSocket


class LoadPivotalLora(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionLoadPivotalLora",
            display_name="Load Pivotal LoRA",
            category="textual inversion",
            description="A pivotal LoRA file (Save Pivotal LoRA, or any LoRA with a bundled word): the MODEL with "
            "its LoRA and the CLIP on which its word resolves, in one node.",
            inputs=[
                io.Model.Input("model"),
                io.Clip.Input("clip"),
                io.Combo.Input("lora_name", options=lora_file_names()),
                io.Float.Input("strength_model", default=1.0, min=-100.0, max=100.0, step=0.01,
                               tooltip="How strongly the LoRA changes the UNet (and the text encoders, where it "
                               "adapts them); 0 leaves it out."),
                io.String.Input("token", default="", optional=True,
                                tooltip="The word to write in prompts; empty uses the file's own."),
            ],
            outputs=[
                io.Model.Output("model", display_name="model"),
                io.Clip.Output("clip", display_name="clip"),
                EmbeddingSocket.Output("embedding", display_name="embedding"),
                PivotalLoraSocket.Output("pivotal_lora", display_name="pivotal_lora"),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, lora_name, strength_model, token=""):
        return file_fingerprint(lora_path, lora_name, strength_model, token)

    @classmethod
    def execute(cls, model, clip, lora_name: str, strength_model: float, token: str = "") -> io.NodeOutput:
        lora = load_pivotal_lora(lora_path(lora_name))
        if token.strip():
            lora = lora.with_token(token.strip())
        return io.NodeOutput(*adapted(model, clip, lora, strength_model), lora.embedding, lora)
