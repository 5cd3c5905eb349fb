"""The pipeline's VAE encoder as a ``LatentEncoder``."""

from __future__ import annotations

import torch

from ...precision import autocast, autocast_dtype_for


class DiffusersLatentEncoder:
    """The distribution's mode, scaled; float32 out. A bfloat16 VAE encodes under bfloat16 autocast (its norms in
    float32); a float16 model's VAE is kept in float32 and encodes in it."""

    def __init__(self, vae: torch.nn.Module):
        self._vae = vae

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self._vae
        if vae.device.type == "meta":
            raise RuntimeError("The VAE was released after the latents were cached; load the model again to encode.")
        with autocast(vae.device, autocast_dtype_for(vae.dtype), for_vae=True):
            latents = vae.encode((pixels * 2 - 1).to(device=vae.device, dtype=vae.dtype)).latent_dist.mode()
        shift = getattr(vae.config, "shift_factor", None)
        if shift is not None:
            latents = latents - shift
        return (latents * vae.config.scaling_factor).float()
