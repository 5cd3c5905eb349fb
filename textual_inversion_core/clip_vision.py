"""A local CLIP vision model (a transformers folder, such as a saved ``openai/clip-vit-large-patch14``) as the
paper's feature extractor: pictures to CLIP image embeddings, for ``evaluation``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import UserError
from .evaluation import FeatureExtractor

# CLIP's own normalisation, used when the folder has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipVisionError(UserError):
    """The CLIP vision folder cannot be used; the message names it."""


def load_clip_vision(folder: str | Path, device: str = "cpu") -> FeatureExtractor:
    """A function from ``[N, 3, H, W]`` pictures in [0, 1] to their ``[N, D]`` CLIP image embeddings."""
    from transformers import CLIPVisionModelWithProjection  # slow to import; only evaluation needs it

    folder = Path(folder).expanduser()
    if not (folder / "config.json").is_file():
        raise ClipVisionError(
            f"{folder} is not a CLIP vision model folder (no config.json); give a local transformers folder such "
            "as a saved openai/clip-vit-large-patch14 (CLIPVisionModelWithProjection or CLIPModel)."
        )
    try:
        model = CLIPVisionModelWithProjection.from_pretrained(folder).to(device).eval()
    except (OSError, ValueError, KeyError) as error:
        raise ClipVisionError(f"Cannot load a CLIP vision model from {folder}: {error}") from error
    size = model.config.image_size
    mean, std = CLIP_MEAN, CLIP_STD
    preprocessor = folder / "preprocessor_config.json"
    if preprocessor.is_file():
        settings = json.loads(preprocessor.read_text(encoding="utf-8"))
        mean, std = settings.get("image_mean", mean), settings.get("image_std", std)
    mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=device).view(1, 3, 1, 1)

    @torch.no_grad()
    def extract(pictures: torch.Tensor) -> torch.Tensor:
        # As CLIP's processor: the shorter side to the model's size, the middle cropped square.
        pictures = pictures.to(device, torch.float32)
        height, width = pictures.shape[-2:]
        scale = size / min(height, width)
        resized = torch.nn.functional.interpolate(
            pictures, size=(max(size, round(height * scale)), max(size, round(width * scale))), mode="bicubic",
            antialias=True, align_corners=False).clamp(0, 1)
        top, left = (resized.shape[-2] - size) // 2, (resized.shape[-1] - size) // 2
        square = resized[..., top:top + size, left:left + size]
        return model(pixel_values=(square - mean) / std).image_embeds.float().cpu()

    return extract
