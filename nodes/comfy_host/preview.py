"""Preview pictures during training: the current word sampled with the MODEL, as an ordinary KSampler would."""

from __future__ import annotations

import comfy.sample
import torch
from PIL import Image

from ...textual_inversion_core.embedding import Embedding
from ...textual_inversion_core.families import LATENT_FACTOR
from .pseudo_words import clip_with_word

PREVIEW_STEPS = 20
PREVIEW_CFG = 7.0
PREVIEW_SAMPLER = "euler"
PREVIEW_SCHEDULER = "normal"


def preview_prompt(prompt: str, token: str) -> str:
    """The preview prompt with A1111's ``[name]`` placeholder filled in; empty means 'a photo of <token>'."""
    return prompt.replace("[name]", token) if prompt.strip() else f"a photo of {token}"


@torch.no_grad()
def render_preview(model, clip, vae, embedding: Embedding, prompt: str, width: int, height: int, seed: int) -> Image.Image:
    """One picture of ``prompt`` in which the bare token stands for ``embedding``; the same seed every time, so
    successive previews show only what the word has learned."""
    word_clip = clip_with_word(clip, embedding)
    positive = word_clip.encode_from_tokens_scheduled(word_clip.tokenize(prompt))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    channels = model.model.latent_format.latent_channels
    latent = torch.zeros([1, channels, height // LATENT_FACTOR, width // LATENT_FACTOR])
    noise = comfy.sample.prepare_noise(latent, seed)
    samples = comfy.sample.sample(
        model, noise, PREVIEW_STEPS, PREVIEW_CFG, PREVIEW_SAMPLER, PREVIEW_SCHEDULER, positive, negative, latent,
        seed=seed, disable_pbar=True,
    )
    pixels = vae.decode(samples)[0].clamp(0, 1)
    return Image.fromarray((pixels * 255).round().to(torch.uint8).cpu().numpy())
