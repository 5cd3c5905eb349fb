"""What a host (diffusers, ComfyUI, ...) provides so the trainer can optimise a pseudo-word against its model.

The trainer never touches a host's modules directly: it sees a prompt encoder that accepts the word's vectors,
a denoiser, and a latent encoder. Each is frozen; only the vectors handed to ``PromptEncoder.encode`` carry
gradients.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Protocol, Sequence

import torch


@dataclasses.dataclass
class Conditioning:
    """What the denoiser is conditioned on for a batch of prompts."""

    context: torch.Tensor  # [batch, tokens, dim]: the cross-attention states
    pooled: torch.Tensor | None = None  # [batch, dim]: SDXL's pooled text embedding, None elsewhere


class PromptEncoder(Protocol):
    """The model's text encoders, with the pseudo-word's vectors injected wherever it occurs in a prompt."""

    # The text encoders this model conditions on and their token-embedding widths, e.g. {"clip_l": 768}.
    encoder_widths: dict[str, int]

    def word_vectors(self, text: str) -> dict[str, torch.Tensor]:
        """The token embeddings of an ordinary text (the init word), ``[tokens, width]`` float32 per encoder."""
        ...

    def median_token_norms(self) -> dict[str, float]:
        """Each encoder's median token-embedding norm over its vocabulary: the size of a real word."""
        ...

    def adaptable_layers(self) -> dict[str, torch.nn.Linear]:
        """The text encoders' transformer-layer linear layers by their kohya LoRA names (``lora_te_...``; SDXL
        ``lora_te1_``/``lora_te2_``), for pivotal tuning's adapter. The trainer never writes their weights."""
        ...

    def encode(self, prompts: Sequence[str], token: str, vectors: dict[str, torch.Tensor]) -> Conditioning:
        """Encode ``prompts``; each occurrence of ``token`` stands for the ``n`` rows of ``vectors[name]``.

        Gradients must flow from the returned conditioning back into ``vectors``.
        """
        ...


class Denoiser(Protocol):
    """The frozen diffusion network in DDPM terms."""

    prediction_type: str  # "epsilon" or "v_prediction"
    alphas_cumprod: torch.Tensor  # [num_train_timesteps], float, on the CPU

    def __call__(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """The network's raw prediction (noise or velocity) for ``noisy_latents`` at integer ``timesteps``."""
        ...

    def adaptable_layers(self) -> dict[str, torch.nn.Linear]:
        """The transformer blocks' linear layers, by their module paths in diffusers' UNet naming (the names LoRA
        files use), for pivotal tuning's adapter to hook onto. The trainer never writes their weights."""
        ...


class LatentEncoder(Protocol):
    """The frozen VAE encoder, in whatever precision its host keeps it."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[batch, 3, H, W]`` concept pictures as they are (``ConceptImage.pixels``, in ``[0, 1]``) to float32
        latents on the training device, already scaled for the denoiser."""
        ...


@dataclasses.dataclass
class FrozenModel:
    """A host's model as the trainer sees it: three frozen parts and where to run them."""

    prompt_encoder: PromptEncoder
    denoiser: Denoiser
    latent_encoder: LatentEncoder
    family: str  # "sd1", "sd2" or "sdxl"
    device: torch.device
    # The dtype the forward passes run in under autocast; None runs them in the weights' own dtype.
    autocast_dtype: torch.dtype | None = None
    # Identifies the base model in the embedding's metadata where the host knows it (e.g. a file hash).
    model_hash: str | None = None
    # Frees the latent encoder's memory; the trainer calls it once the pictures are encoded when the run renders
    # no previews. None where the host does not own the encoder (ComfyUI's VAE serves the rest of the graph).
    release_latent_encoder: Callable[[], None] | None = None
