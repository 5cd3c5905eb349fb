"""ComfyUI's IMAGE batches ([B, H, W, C] in [0, 1]) to the trainer's concept pictures, and pictures back."""

from __future__ import annotations

import numpy as np
import torch

from ...textual_inversion_core.data import ConceptDataError, ConceptImage
from ...textual_inversion_core.families import LATENT_FACTOR


def concept_images(images: torch.Tensor, captions: str, masks: torch.Tensor | None = None) -> list[ConceptImage]:
    """ComfyUI's IMAGE batch ([B, H, W, C] in [0, 1]) and one caption line per picture, as the trainer takes them;
    with ``masks`` (ComfyUI's MASK, [B, H, W] or [H, W]: one per picture, or one for all), each picture's mask."""
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
    mask = None if masks is None else picture_masks(masks, images.shape[0], images.shape[1:3])
    return [
        ConceptImage(pixels[i].clone(), caption=lines[i], name=f"image {i + 1}",
                     mask=None if mask is None else mask[i, :, top:top + height, left:left + width].clone())
        for i in range(pixels.shape[0])
    ]


def picture_masks(masks: torch.Tensor, count: int, size: tuple[int, int]) -> torch.Tensor:
    """``masks`` as ``[count, 1, H, W]`` in [0, 1] at the pictures' ``size``: one mask per picture, or one for all,
    scaled to the pictures if it was made at another size."""
    masks = masks.float().cpu()
    if masks.dim() == 2:
        masks = masks[None]
    if masks.dim() != 3:
        raise ConceptDataError(f"masks must be a MASK ([B, H, W]); got a tensor of shape {tuple(masks.shape)}.")
    if masks.shape[0] not in (1, count):
        raise ConceptDataError(
            f"There are {masks.shape[0]} masks for {count} pictures; give one mask per picture, in the pictures' "
            "order, or a single mask for all of them."
        )
    masks = masks[:, None]
    if tuple(masks.shape[2:]) != tuple(size):
        masks = torch.nn.functional.interpolate(masks, size=tuple(size), mode="bilinear", align_corners=False)
    return masks.expand(count, -1, -1, -1).clamp(0, 1)


def picture_to_image(picture) -> torch.Tensor:
    """A PIL picture as a one-image ComfyUI IMAGE batch."""
    array = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None]
