"""Validation pictures during training: the current word sampled with the MODEL, as an ordinary KSampler would,
for each of the user's prompts, as one labelled grid."""

from __future__ import annotations

import comfy.sample
import torch
from PIL import Image

from ...textual_inversion_core.embedding import Embedding
from ...textual_inversion_core.families import LATENT_FACTOR
from ...textual_inversion_core.validation import Validation, validation_grid
from .pseudo_words import clip_with_word

PREVIEW_STEPS = 20
PREVIEW_SAMPLER = "euler"
PREVIEW_SCHEDULER = "normal"


@torch.no_grad()
def render_validation(model, clip, vae, embedding: Embedding, validation: Validation, width: int, height: int,
                      seed: int, step: int) -> Image.Image:
    """A row per validation prompt, in which the bare token stands for ``embedding``; the same seed every time,
    so successive grids show only what the word has learned."""
    word_clip = clip_with_word(clip, embedding)
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(validation.negative_prompt))
    channels = model.model.latent_format.latent_channels
    latent = torch.zeros([1, channels, height // LATENT_FACTOR, width // LATENT_FACTOR])
    pictures = []
    for prompt in validation.prompts:
        positive = word_clip.encode_from_tokens_scheduled(word_clip.tokenize(prompt))
        noise = comfy.sample.prepare_noise(latent, seed)
        samples = comfy.sample.sample(
            model, noise, PREVIEW_STEPS, validation.guidance_scale, PREVIEW_SAMPLER, PREVIEW_SCHEDULER, positive,
            negative, latent, seed=seed, disable_pbar=True,
        )
        pictures.append(vae.decode(samples)[:1].clamp(0, 1).movedim(-1, 1).float().cpu())
    return validation_grid(validation, torch.cat(pictures), step)
