"""The custom socket type the nodes pass a learned word along: a ``textual_inversion_core`` Embedding."""

from comfy_api.latest import io

EmbeddingSocket = io.Custom("TEXTUAL_INVERSION_EMBEDDING")
# A word and the LoRA trained around it: a ``textual_inversion_core.lora`` PivotalLora.
PivotalLoraSocket = io.Custom("TEXTUAL_INVERSION_PIVOTAL_LORA")
# ComfyUI's own type for LoRA weights (its Train LoRA, Load LoRA Model and Save LoRA Weights nodes): a state dict.
LoraModelSocket = io.Custom("LORA_MODEL")
