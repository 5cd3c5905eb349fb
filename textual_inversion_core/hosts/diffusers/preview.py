"""Pictures for prompts with the pseudo-word in them, through the pipeline's own sampler and VAE decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from ...embedding import Embedding
from .text_encoders import DiffusersPromptEncoder


@torch.no_grad()
def render_pictures(
    pipeline: DiffusionPipeline,
    prompt_encoder: DiffusersPromptEncoder,
    family: str,
    embedding: Embedding,
    prompts: Sequence[str],
    seeds: Sequence[int],
    steps: int = 20,
    resolution: int | None = None,
    guidance_scale: float = 7.5,
    negative_prompt: str = "",
) -> torch.Tensor:
    """One picture per prompt and seed, as a ``[N, 3, H, W]`` float batch in [0, 1], in which the bare
    ``embedding.token`` stands for the embedding's vectors (a prompt without it is an ordinary prompt).

    ``resolution`` (square, a multiple of 8) defaults to the model's native size; each picture depends only on its
    prompt and seed, not on the others in the batch.
    """
    if len(prompts) != len(seeds):
        raise ValueError(f"one seed per prompt: got {len(prompts)} prompts and {len(seeds)} seeds")
    embedding.check_family(family)
    vectors = {name: embedding.vectors[name] for name in prompt_encoder.encoder_widths}
    cond = prompt_encoder.encode(list(prompts), embedding.token, vectors)
    size = resolution or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    # The negative prompt is left to the pipeline, which encodes it (or zeroes an empty one) as it always does.
    extra = {"pooled_prompt_embeds": cond.pooled} if family == "sdxl" else {}
    latents = pipeline(
        prompt_embeds=cond.context,
        negative_prompt=[negative_prompt] * len(prompts) if negative_prompt else None,
        **extra,
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds],
        output_type="latent",
    ).images
    return decode(pipeline, latents)


def render_preview(pipeline, prompt_encoder, family: str, embedding: Embedding, prompt: str, seed: int = 0,
                   steps: int = 20, resolution: int | None = None, guidance_scale: float = 7.5) -> Image.Image:
    """One picture for ``prompt`` (see ``render_pictures``); the same seed gives the same image."""
    pixels = render_pictures(pipeline, prompt_encoder, family, embedding, [prompt], [seed], steps=steps,
                             resolution=resolution, guidance_scale=guidance_scale)
    return Image.fromarray((pixels[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8"))


def decode(pipeline: DiffusionPipeline, latents: torch.Tensor) -> torch.Tensor:
    vae = pipeline.vae
    latents = latents.to(dtype=vae.dtype) / vae.config.scaling_factor
    shift = getattr(vae.config, "shift_factor", None)
    if shift is not None:
        latents = latents + shift
    pixels = vae.decode(latents).sample
    return (pixels.float() / 2 + 0.5).clamp(0, 1).cpu()
