"""A labelled picture grid: one row per prompt or way of asking, so what a word learned is seen rather than read
off a loss curve (the validation previews, the world demo's grid)."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw, ImageFont

LABEL_WIDTH = 300
GAP = 4


def picture_grid(rows: list[tuple[str, torch.Tensor]], per_row: int = 6) -> Image.Image:
    """``rows`` of (label, ``[N, 3, H, W]`` pictures in [0, 1]); the first ``per_row`` of each are shown, small
    pictures scaled up to at least 128 px."""
    side = rows[0][1].shape[-1]
    scale = max(1, 128 // side)
    side *= scale
    columns = min(per_row, max(len(pictures) for _, pictures in rows))
    grid = Image.new("RGB", (LABEL_WIDTH + columns * (side + GAP), len(rows) * (side + GAP)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for r, (label, pictures) in enumerate(rows):
        top = r * (side + GAP)
        draw.multiline_text((6, top + side // 2 - 6), _wrapped(label), fill=(0, 0, 0), font=font)
        for c, picture in enumerate(pictures[:columns]):
            pixels = (picture.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
            tile = Image.fromarray(pixels).resize((side, side), Image.Resampling.NEAREST)
            grid.paste(tile, (LABEL_WIDTH + c * (side + GAP), top))
    return grid


def _wrapped(label: str, width: int = 46) -> str:
    lines, line = [], ""
    for word in label.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])
