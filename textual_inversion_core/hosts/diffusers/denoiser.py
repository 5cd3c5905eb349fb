"""The pipeline's UNet as a ``Denoiser``."""

from __future__ import annotations

import torch

from ...compilation import compiled
from ...errors import ModelError
from ...interfaces import Conditioning
from ...objective import PREDICTION_TYPES


class DiffusersDenoiser:
    """The pipeline's UNet as a ``Denoiser``; its predictions come back in float32 whatever the weights' dtype."""

    def __init__(self, unet: torch.nn.Module, scheduler, family: str, vae_scale_factor: int, compile: bool = False):
        self._unet = unet
        # The module itself stays uncompiled (previews sample through it, at other sizes and batches); training's
        # forward passes, all of one shape, go through the compiled one.
        self._forward = compiled(unet) if compile else unet
        self._family = family
        self._vae_scale_factor = vae_scale_factor
        self.prediction_type = scheduler.config.prediction_type
        if self.prediction_type not in PREDICTION_TYPES:
            raise ModelError(
                f"The model's scheduler predicts {self.prediction_type!r}; only {' and '.join(PREDICTION_TYPES)} "
                "models can be trained."
            )
        self.alphas_cumprod = scheduler.alphas_cumprod.detach().to(device="cpu", dtype=torch.float32).clone()

    def __call__(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        device, dtype = self._unet.device, self._unet.dtype
        added_cond_kwargs = None
        if self._family == "sdxl":
            if cond.pooled is None:
                raise ValueError("An SDXL denoiser needs the pooled text embedding (Conditioning.pooled).")
            # SDXL's micro-conditioning: original size, crop corner (0, 0), target size, all in pixels.
            height, width = (side * self._vae_scale_factor for side in noisy_latents.shape[-2:])
            time_ids = torch.tensor([height, width, 0, 0, height, width], device=device, dtype=dtype)
            added_cond_kwargs = {
                "text_embeds": cond.pooled.to(device=device, dtype=dtype),
                "time_ids": time_ids.expand(noisy_latents.shape[0], -1),
            }
        prediction = self._forward(
            noisy_latents.to(device=device, dtype=dtype),
            timesteps.to(device),
            encoder_hidden_states=cond.context.to(device=device, dtype=dtype),
            added_cond_kwargs=added_cond_kwargs,
        ).sample
        return prediction.float()

    def adaptable_layers(self) -> dict[str, torch.nn.Linear]:
        return {name: module for name, module in self._unet.named_modules()
                if isinstance(module, torch.nn.Linear) and ".transformer_blocks." in name}
