"""The ordinary denoising loss of a latent diffusion model, in DDPM terms.

x_t = sqrt(ᾱ_t)·x_0 + sqrt(1-ᾱ_t)·ε; an ε-prediction model is asked for ε, a v-prediction model for
v = sqrt(ᾱ_t)·ε - sqrt(1-ᾱ_t)·x_0. Min-SNR weighting (Hang et al., 2023) damps the easy low-noise steps
that otherwise dominate the gradient.
"""

from __future__ import annotations

import torch

from .interfaces import Conditioning, Denoiser

PREDICTION_TYPES = ("epsilon", "v_prediction")


def _per_sample(values: torch.Tensor, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device)[timesteps].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def add_noise(latents, noise, timesteps, alphas_cumprod):
    a = _per_sample(alphas_cumprod, timesteps, latents)
    return a.sqrt() * latents + (1 - a).sqrt() * noise


def prediction_target(latents, noise, timesteps, alphas_cumprod, prediction_type: str):
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        a = _per_sample(alphas_cumprod, timesteps, latents)
        return a.sqrt() * noise - (1 - a).sqrt() * latents
    raise ValueError(f"prediction type must be one of {', '.join(PREDICTION_TYPES)}, got {prediction_type!r}.")


def min_snr_weights(timesteps, alphas_cumprod, gamma: float, prediction_type: str) -> torch.Tensor:
    # Where the timesteps are: bringing them to the CPU would make the host wait for the device every step.
    # (MPS has no float64.)
    a = alphas_cumprod.to(timesteps.device, torch.float32 if timesteps.device.type == "mps" else torch.float64)
    a = a[timesteps]
    snr = a / (1 - a)
    clipped = snr.clamp(max=gamma)
    # v-prediction's loss already carries a factor (snr + 1) relative to ε's, hence the different divisor.
    weights = clipped / (snr + 1) if prediction_type == "v_prediction" else clipped / snr
    return weights.to(torch.float32)


def denoising_loss(
    denoiser: Denoiser,
    latents: torch.Tensor,
    cond: Conditioning,
    timesteps: torch.Tensor,
    noise: torch.Tensor,
    min_snr_gamma: float | None = None,
    pixel_weights: torch.Tensor | None = None,
    alphas_cumprod: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error of the denoiser's prediction for one batch, weighted per sample if asked.

    ``pixel_weights`` (``[batch, 1, h, w]`` on the latent grid, e.g. a mask) make each sample's error a weighted
    mean over its latent pixels: a pixel of weight 0 contributes nothing, not even through the normalisation.
    ``alphas_cumprod`` is the denoiser's already on the latents' device (a training loop moves it there once
    rather than at every step); by default the denoiser's own.
    """
    schedule = denoiser.alphas_cumprod if alphas_cumprod is None else alphas_cumprod
    noisy = add_noise(latents, noise, timesteps, schedule)
    target = prediction_target(latents, noise, timesteps, schedule, denoiser.prediction_type)
    prediction = denoiser(noisy, timesteps, cond)
    squared = (prediction.float() - target.float()).pow(2)
    if pixel_weights is None:
        per_sample = squared.flatten(1).mean(dim=1)
    else:
        weights = pixel_weights.to(squared.device, torch.float32).expand_as(squared)
        per_sample = (squared * weights).flatten(1).sum(dim=1) / weights.flatten(1).sum(dim=1).clamp(min=1e-8)
    if min_snr_gamma:
        weights = min_snr_weights(timesteps, schedule, min_snr_gamma, denoiser.prediction_type)
        per_sample = per_sample * weights.to(per_sample.device)
    return per_sample.mean()
