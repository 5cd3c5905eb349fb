"""ComfyUI's IMAGE batches ([B, H, W, C] in [0, 1]) to the trainer's concept pictures, and pictures back."""

from __future__ import annotations

import numpy as np
import torch

from ...textual_inversion_core.data import ConceptDataError, ConceptImage
from ...textual_inversion_core.families import LATENT_FACTOR


def concept_images(images: torch.Tensor, captions: str) -> list[ConceptImage]:
    """ComfyUI's IMAGE batch ([B, H, W, C] in [0, 1]) and one caption line per picture, as the trainer takes them."""
    # Split on newlines only: an empty last line is a picture without a caption, not the end of the text.
    lines = [line.strip() for line in captions.split("\n")]
    while len(lines) > images.shape[0] and not lines[-1]:
        lines.pop()
    if len(lines) > images.shape[0]:
        raise ConceptDataError(
            f"captions has {len(lines)} lines but there are {images.shape[0]} pictures; give one line per picture "
            "(an empty line for a picture without a caption), as Load Concept Images does."
        )
    lines += [""] * (images.shape[0] - len(lines))
    height, width = (side // LATENT_FACTOR * LATENT_FACTOR for side in images.shape[1:3])
    if height == 0 or width == 0:
        raise ConceptDataError(f"The pictures are {images.shape[2]}x{images.shape[1]}; training needs at least 8x8.")
    # The VAE works on whole latents; crop the odd rows and columns as ComfyUI's VAE Encode does.
    top, left = (images.shape[1] - height) // 2, (images.shape[2] - width) // 2
    pixels = images[:, top:top + height, left:left + width, :3].movedim(-1, 1).float().cpu()
    return [
        ConceptImage(pixels[i].clone(), caption=lines[i], name=f"image {i + 1}")
        for i in range(pixels.shape[0])
    ]


def picture_to_image(picture) -> torch.Tensor:
    """A PIL picture as a one-image ComfyUI IMAGE batch."""
    array = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None]
