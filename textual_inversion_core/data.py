"""Concept pictures: a folder of 3-5 images (and optional captions) brought to the training size."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CROP_MODES = ("center", "none")


class ConceptDataError(UserError):
    """The concept pictures cannot be used as given; the message names the file or folder."""


MASK_SUFFIX = ".mask"  # "cat.mask.png" is the mask of "cat.jpg"


@dataclasses.dataclass
class ConceptImage:
    pixels: torch.Tensor  # [3, H, W] float32 in [0, 1]
    caption: str = ""
    name: str = ""
    # [1, H, W] float32 in [0, 1]: where the concept is, the loss's weight per pixel; None counts every pixel.
    mask: torch.Tensor | None = None


def check_resolution(resolution: int) -> None:
    if resolution < 64 or resolution % 64:
        raise ConceptDataError(
            f"resolution must be a multiple of 64 (e.g. 512 for SD1.x, 768 for SD2.x, 1024 for SDXL), "
            f"got {resolution}."
        )


def fit_to_square(image: Image.Image, resolution: int, crop: str = "center") -> Image.Image:
    """Scale to ``resolution`` square: ``center`` keeps the aspect ratio and crops the middle; ``none`` keeps
    the whole picture and stretches it, as ComfyUI's own scaling nodes do without cropping."""
    if crop == "center":
        return ImageOps.fit(image, (resolution, resolution), Image.Resampling.LANCZOS)
    if crop == "none":
        return image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    raise ConceptDataError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}.")


def has_alpha(image: Image.Image) -> bool:
    """Whether the picture carries an alpha channel (opaque or not)."""
    return image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)


def has_transparency(image: Image.Image) -> bool:
    """Whether some pixel of the picture is less than fully opaque."""
    return has_alpha(image) and image.convert("RGBA").getchannel("A").getextrema()[0] < 255


def to_rgb(image: Image.Image) -> Image.Image:
    """Composite transparency onto white, as a viewer would show it (``image`` already upright)."""
    if has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def list_concept_files(folder: Path) -> list[Path]:
    """The pictures in ``folder``, without their masks."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        and not p.stem.lower().endswith(MASK_SUFFIX)
    )


def read_mask(picture: Path, upright: Image.Image, resolution: int, crop: str) -> torch.Tensor | None:
    """The mask of the picture at ``picture`` (``upright``: it opened, EXIF orientation applied) at
    ``resolution``, cropped as the picture is: ``name.mask.png`` beside it (white where the concept is), else the
    picture's own alpha channel where it has transparency; None without either."""
    size = upright.size
    mask_files = sorted(m for m in picture.parent.glob(f"{picture.stem}{MASK_SUFFIX}.*")
                        if m.suffix.lower() in IMAGE_SUFFIXES)
    if mask_files:
        try:
            with Image.open(mask_files[0]) as mask_image:
                mask_image = ImageOps.exif_transpose(mask_image)
                grey = (mask_image.convert("RGBA").getchannel("A") if has_transparency(mask_image)
                        else mask_image.convert("L"))
        except (UnidentifiedImageError, OSError) as error:
            raise ConceptDataError(f"Cannot read the mask {mask_files[0]}: {error}. Remove or replace it.") from error
        if grey.size != size:
            raise ConceptDataError(
                f"The mask {mask_files[0]} is {grey.size[0]}x{grey.size[1]} but its picture {picture} is "
                f"{size[0]}x{size[1]}; a mask must have its picture's size (white where the concept is, black "
                "elsewhere)."
            )
    elif has_transparency(upright):
        grey = upright.convert("RGBA").getchannel("A")
    else:
        return None
    mask = np.asarray(fit_to_square(grey, resolution, crop), dtype=np.float32) / 255.0
    return torch.from_numpy(mask)[None].contiguous()


def load_concept_folder(folder: str | Path, resolution: int = 512, crop: str = "center") -> list[ConceptImage]:
    """Every picture in ``folder`` at ``resolution``, with the caption from ``name.txt`` beside it if any, and
    its mask from ``name.mask.png`` beside it or from its own alpha channel if any."""
    check_resolution(resolution)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConceptDataError(f"The concept folder {folder} does not exist or is not a folder.")
    files = list_concept_files(folder)
    if not files:
        raise ConceptDataError(
            f"No pictures in {folder}; put 3-5 pictures of the concept there "
            f"({', '.join(IMAGE_SUFFIXES)})."
        )
    images = []
    for path in files:
        try:
            with Image.open(path) as opened:
                upright = ImageOps.exif_transpose(opened)
                image = fit_to_square(to_rgb(upright), resolution, crop)
                mask = read_mask(path, upright, resolution, crop)
        except Image.DecompressionBombError as error:
            raise ConceptDataError(
                f"Cannot read the picture {path}: it has more pixels than the {2 * Image.MAX_IMAGE_PIXELS:,} "
                f"Pillow opens, a limit against decompression bombs ({error}). Training uses {resolution} px; "
                "scale the picture down or replace it."
            ) from error
        except (UnidentifiedImageError, OSError) as error:
            raise ConceptDataError(f"Cannot read the picture {path}: {error}. Remove or replace it.") from error
        caption_file = path.with_suffix(".txt")
        caption = caption_file.read_text(encoding="utf-8").strip() if caption_file.is_file() else ""
        images.append(ConceptImage(pil_to_tensor(image), caption=" ".join(caption.split()), name=path.name,
                                   mask=mask))
    return images
