"""The VAE as a ``LatentEncoder``: ComfyUI's own encode, then the MODEL's latent format."""

from __future__ import annotations

import torch

from ...textual_inversion_core.precision import autocast


class ComfyLatentEncoder:
    """Encodes in the dtype training computes in where that is bfloat16 (float16 would overflow SD's VAEs)."""

    def __init__(self, vae, model, compute_dtype: torch.dtype | None):
        self._vae = vae
        self._model = model
        self._compute_dtype = compute_dtype

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        images = pixels.float().clamp(0, 1).movedim(1, -1)  # ComfyUI IMAGE layout: [B, H, W, C]
        with autocast(self._model.load_device, self._compute_dtype, for_vae=True):
            latents = self._vae.encode(images.cpu())
        return self._model.model.process_latent_in(latents).to(self._model.load_device, torch.float32)
