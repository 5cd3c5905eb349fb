"""A labelled picture grid: one row per way of asking (the concept's pictures, the init word, the learned word,
edits), so what a word learned is seen rather than read off a loss curve."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw, ImageFont

SCALE = 2
LABEL_WIDTH = 300


def picture_grid(rows: list[tuple[str, torch.Tensor]], per_row: int = 6) -> Image.Image:
    """``rows`` of (label, ``[N, 3, H, W]`` pictures in [0, 1]); the first ``per_row`` of each are shown."""
    side = rows[0][1].shape[-1] * SCALE
    grid = Image.new("RGB", (LABEL_WIDTH + per_row * (side + 4), len(rows) * (side + 4)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for r, (label, pictures) in enumerate(rows):
        top = r * (side + 4)
        draw.text((6, top + side // 2 - 6), label, fill=(0, 0, 0), font=font)
        for c, picture in enumerate(pictures[:per_row]):
            pixels = (picture.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
            tile = Image.fromarray(pixels).resize((side, side), Image.Resampling.NEAREST)
            grid.paste(tile, (LABEL_WIDTH + c * (side + 4), top))
    return grid
