"""A Stable Diffusion pipeline, frozen on one device and dtype, and the trainer's view of it."""

from __future__ import annotations

import torch
from diffusers import DiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor2_0
from PIL import Image

from ...embedding import Embedding
from ...families import FAMILY_ENCODERS, family_of_single_encoder
from ...frozen_convolutions import route_convolutions
from ...interfaces import FrozenModel
from ...precision import autocast_dtype_for, resolve_device, resolve_dtype
from .denoiser import DiffusersDenoiser
from .latent_encoder import DiffusersLatentEncoder
from .preview import render_pictures, render_preview
from .text_encoders import PIPELINE_ENCODERS, DiffusersPromptEncoder, TextEncoder


class DiffusersModel:
    """A Stable Diffusion pipeline, frozen, on one device and dtype, as the trainer and previews use it."""

    def __init__(
        self,
        pipeline: DiffusionPipeline,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
        model_hash: str | None = None,
        compile: bool = False,
    ):
        self.pipeline = pipeline
        self.family = _pipeline_family(pipeline)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.model_hash = model_hash
        for module in pipeline.components.values():
            if isinstance(module, torch.nn.Module):
                if module.dtype != self.dtype:
                    module.to(dtype=self.dtype)
                module.to(device=self.device).requires_grad_(False).eval()
        # The VAE overflows in float16 unless its config says otherwise; the pipelines upcast it, and so do we.
        if self.dtype == torch.float16 and pipeline.vae.config.get("force_upcast", True):
            pipeline.vae.to(dtype=torch.float32)
        pipeline.unet.set_attn_processor(AttnProcessor2_0())
        pipeline.vae.set_attn_processor(AttnProcessor2_0())
        route_convolutions(pipeline.unet)  # frozen for this object's life, as every weight here
        pipeline.set_progress_bar_config(disable=True)

        encoders = [
            TextEncoder(name, getattr(pipeline, tokenizer), getattr(pipeline, model))
            for name, (tokenizer, model) in zip(FAMILY_ENCODERS[self.family], PIPELINE_ENCODERS)
        ]
        self.prompt_encoder = DiffusersPromptEncoder(encoders, self.family)
        self.denoiser = DiffusersDenoiser(pipeline.unet, pipeline.scheduler, self.family, pipeline.vae_scale_factor,
                                          compile=compile)
        self.latent_encoder = DiffusersLatentEncoder(pipeline.vae)

    @property
    def prediction_type(self) -> str:
        return self.denoiser.prediction_type

    def release_vae(self) -> None:
        """Free the VAE's weights: training needs them only to cache the latents. Previews and latent encoding
        are impossible afterwards."""
        self.pipeline.vae.to_empty(device="meta")

    def frozen_model(self, release_vae_when_cached: bool = False) -> FrozenModel:
        """The trainer's view; with ``release_vae_when_cached`` a run without previews frees the VAE once the
        pictures are encoded (the model can then neither encode nor preview again)."""
        return FrozenModel(
            prompt_encoder=self.prompt_encoder,
            denoiser=self.denoiser,
            latent_encoder=self.latent_encoder,
            family=self.family,
            device=self.device,
            autocast_dtype=autocast_dtype_for(self.dtype),
            model_hash=self.model_hash,
            release_latent_encoder=self.release_vae if release_vae_when_cached else None,
        )

    def render_preview(self, embedding: Embedding, prompt: str, seed: int = 0, steps: int = 20,
                       resolution: int | None = None, guidance_scale: float = 7.5) -> Image.Image:
        """An image for ``prompt`` in which the bare ``embedding.token`` stands for the embedding (see
        ``preview.render_preview``)."""
        return render_preview(self.pipeline, self.prompt_encoder, self.family, embedding, prompt, seed=seed,
                              steps=steps, resolution=resolution, guidance_scale=guidance_scale)

    def render_pictures(self, embedding: Embedding, prompts, seeds, steps: int = 20, resolution: int | None = None,
                        guidance_scale: float = 7.5, negative_prompt: str = ""):
        """A ``[N, 3, H, W]`` batch in [0, 1], one picture per prompt and seed (see ``preview.render_pictures``)."""
        return render_pictures(self.pipeline, self.prompt_encoder, self.family, embedding, prompts, seeds,
                               steps=steps, resolution=resolution, guidance_scale=guidance_scale,
                               negative_prompt=negative_prompt)


def _pipeline_family(pipeline: DiffusionPipeline) -> str:
    if getattr(pipeline, "text_encoder_2", None) is not None:
        return "sdxl"
    return family_of_single_encoder(pipeline.text_encoder.config.hidden_size, "The pipeline's text encoder")
