"""Save Pivotal LoRA: the word and its LoRA as one .safetensors in ComfyUI's loras folder."""

from __future__ import annotations

from comfy_api.latest import io

from ..textual_inversion_core.lora import PivotalLora
from .comfy_host.lora_folders import display_lora_path, save_new_lora_file
from .socket_types import PivotalLoraSocket


class SavePivotalLora(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionSavePivotalLora",
            display_name="Save Pivotal LoRA",
            category="textual inversion",
            description="Write the word and its LoRA as one .safetensors into ComfyUI's loras folder: Load Pivotal "
            "LoRA applies both halves, ComfyUI's Load LoRA and A1111/Forge apply the LoRA (A1111 the word too). "
            "Existing files are never overwritten.",
            is_output_node=True,
            inputs=[
                PivotalLoraSocket.Input("pivotal_lora"),
                io.String.Input("filename_prefix", default="",
                                tooltip="The file name (subfolders allowed); empty uses the token. A number is "
                                "added if the name is taken."),
            ],
            outputs=[],
        )

    @classmethod
    def execute(cls, pivotal_lora: PivotalLora, filename_prefix: str = "") -> io.NodeOutput:
        path = save_new_lora_file(pivotal_lora, filename_prefix.strip() or pivotal_lora.token)
        return io.NodeOutput(ui={"text": [display_lora_path(path)]})
