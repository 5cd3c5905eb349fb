"""The trainer's view of ComfyUI's MODEL, CLIP and VAE, once they are shown to belong together."""

from __future__ import annotations

from ...textual_inversion_core.errors import ModelError
from ...textual_inversion_core.families import ENCODER_WIDTHS, display_name
from ...textual_inversion_core.interfaces import FrozenModel
from .denoiser import ComfyDenoiser, compute_dtype
from .latent_encoder import ComfyLatentEncoder
from .prompt_encoder import ComfyPromptEncoder
from .pseudo_words import clip_family, clip_tokenizers


def frozen_model(model, clip, vae, compile: bool = False) -> FrozenModel:
    """The trainer's view of ComfyUI's MODEL/CLIP/VAE; raises ModelError if they cannot be trained on. With
    ``compile`` the UNet's training passes run through torch.compile."""
    family = clip_family(clip)
    if family is None:
        raise ModelError(
            "Train Embedding needs the CLIP of a Stable Diffusion 1.x, 2.x or SDXL checkpoint; this CLIP has "
            f"the text encoders {', '.join(sorted(clip_tokenizers(clip.tokenizer))) or 'none of CLIP-L/H/G'}."
        )
    context_dim = model.model.model_config.unet_config.get("context_dim")
    clip_width = sum(ENCODER_WIDTHS[name] for name in clip_tokenizers(clip.tokenizer))
    if context_dim != clip_width:
        raise ModelError(
            f"The MODEL expects {context_dim}-wide text conditioning but the CLIP is {display_name(family)} "
            f"({clip_width} wide); connect the MODEL and CLIP of the same checkpoint."
        )
    denoiser = ComfyDenoiser(model, compile)
    return FrozenModel(
        prompt_encoder=ComfyPromptEncoder(clip),
        denoiser=denoiser,
        latent_encoder=ComfyLatentEncoder(vae, model, compute_dtype(model)),
        family=family,
        device=denoiser.device,
        autocast_dtype=compute_dtype(model),
    )
