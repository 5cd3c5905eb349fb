"""A loss curve as a picture, drawn with Pillow alone so no plotting library is needed."""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

RAW_COLOUR = (160, 190, 230)
SMOOTH_COLOUR = (20, 80, 180)
AXIS_COLOUR = (90, 90, 90)
GRID_COLOUR = (230, 230, 230)


def smooth(values: Sequence[float], weight: float | None = None) -> list[float]:
    """Exponential moving average with start-up bias correction, like TensorBoard's smoothing."""
    if weight is None:
        weight = min(0.98, 1 - 10 / max(10, len(values)))
    out, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**i))
    return out


def render_loss_plot(losses: Sequence[float], size: tuple[int, int] = (768, 384), title: str = "loss",
                     first_step: int = 1) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 64, width - 16, 28, height - 36
    draw.text((left, 8), title, fill=AXIS_COLOUR, font=font)
    values = [v for v in losses if math.isfinite(v)]
    if not values:
        draw.text((left, height // 2), "no steps yet", fill=AXIS_COLOUR, font=font)
        return image
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5 * abs(low or 1), high + 0.5 * abs(high or 1)
    last_step = first_step + len(losses) - 1

    def point(index: int, value: float) -> tuple[float, float]:
        x = left + (right - left) * (index / max(1, len(losses) - 1))
        y = bottom - (bottom - top) * (value - low) / (high - low)
        return x, y

    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = bottom - (bottom - top) * fraction
        draw.line([(left, y), (right, y)], fill=GRID_COLOUR)
        draw.text((4, y - 6), f"{low + (high - low) * fraction:.4g}", fill=AXIS_COLOUR, font=font)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=AXIS_COLOUR)
    draw.text((left, bottom + 8), f"step {first_step}", fill=AXIS_COLOUR, font=font)
    end_label = f"step {last_step}"
    draw.text((right - draw.textlength(end_label, font=font), bottom + 8), end_label, fill=AXIS_COLOUR, font=font)

    finite = [(i, v) for i, v in enumerate(losses) if math.isfinite(v)]
    if len(finite) == 1:
        x, y = point(*finite[0])
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=SMOOTH_COLOUR)
        return image
    draw.line([point(i, v) for i, v in finite], fill=RAW_COLOUR, width=1)
    smoothed = smooth([v for _, v in finite])
    draw.line([point(i, s) for (i, _), s in zip(finite, smoothed)], fill=SMOOTH_COLOUR, width=2)
    label = f"last {smoothed[-1]:.4g} (smoothed)"
    draw.text((right - draw.textlength(label, font=font), 8), label, fill=SMOOTH_COLOUR, font=font)
    return image
