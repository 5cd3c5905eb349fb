"""A pivotal LoRA put on ComfyUI's MODEL and CLIP the way ComfyUI applies any LoRA: as weight patches on clones."""

from __future__ import annotations

import comfy.sd

from ...textual_inversion_core.lora import PivotalLora
from .pseudo_words import clip_with_word


def adapted_model(model, lora: PivotalLora, strength: float = 1.0):
    """A clone of ``model`` patched with the adapter (ComfyUI's own LoRA code computes the same
    ``alpha / rank · up @ down`` training added to each layer's output)."""
    if strength == 0:
        return model
    return comfy.sd.load_lora_for_models(model, None, lora.unet_weights(), strength, 0)[0]


def adapted_clip(clip, lora: PivotalLora):
    """A clone of ``clip`` on which the bare word stands for the lora's embedding."""
    return clip_with_word(clip, lora.embedding)
