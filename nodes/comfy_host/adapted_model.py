"""A pivotal LoRA put on ComfyUI's MODEL and CLIP the way ComfyUI applies any LoRA: as weight patches on clones,
with the word taught to the CLIP's tokenizer."""

from __future__ import annotations

import comfy.sd

from ...textual_inversion_core.lora import PivotalLora
from .pseudo_words import clip_with_word


def adapted(model, clip, lora: PivotalLora, strength: float = 1.0):
    """Clones of ``model`` and ``clip`` patched with the adapter at ``strength`` (ComfyUI's own LoRA code computes
    the same ``alpha / rank · up @ down`` training added to each layer's output), the bare word standing for the
    lora's embedding on the CLIP."""
    if strength != 0:
        model, clip = comfy.sd.load_lora_for_models(model, clip, lora.lora_weights(), strength, strength)
    return model, clip_with_word(clip, lora.embedding)
