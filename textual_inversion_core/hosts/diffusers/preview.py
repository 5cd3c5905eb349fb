"""An image for a prompt with the pseudo-word in it, through the pipeline's own sampler and VAE decoder."""

from __future__ import annotations

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from ...embedding import Embedding
from .text_encoders import DiffusersPromptEncoder


@torch.no_grad()
def render_preview(
    pipeline: DiffusionPipeline,
    prompt_encoder: DiffusersPromptEncoder,
    family: str,
    embedding: Embedding,
    prompt: str,
    seed: int = 0,
    steps: int = 20,
    resolution: int | None = None,
    guidance_scale: float = 7.5,
) -> Image.Image:
    """An image for ``prompt`` in which the bare ``embedding.token`` stands for the embedding's vectors.

    ``resolution`` (square, a multiple of 8) defaults to the model's native size; the same seed gives the
    same image.
    """
    embedding.check_family(family)
    vectors = {name: embedding.vectors[name] for name in prompt_encoder.encoder_widths}
    cond = prompt_encoder.encode([prompt], embedding.token, vectors)
    size = resolution or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    # The negative (empty) prompt is left to the pipeline, which encodes or zeroes it as it always does.
    extra = {"pooled_prompt_embeds": cond.pooled} if family == "sdxl" else {}
    latents = pipeline(
        prompt_embeds=cond.context,
        **extra,
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="latent",
    ).images
    return decode(pipeline, latents)


def decode(pipeline: DiffusionPipeline, latents: torch.Tensor) -> Image.Image:
    vae = pipeline.vae
    latents = latents.to(dtype=vae.dtype) / vae.config.scaling_factor
    shift = getattr(vae.config, "shift_factor", None)
    if shift is not None:
        latents = latents + shift
    pixels = vae.decode(latents).sample
    return pipeline.image_processor.postprocess(pixels.float(), output_type="pil")[0]
