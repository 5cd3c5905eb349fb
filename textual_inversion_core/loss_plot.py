"""A loss curve as a picture, drawn with Pillow alone so no plotting library is needed."""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

RAW_COLOUR = (160, 190, 230)
SMOOTH_COLOUR = (20, 80, 180)
AXIS_COLOUR = (90, 90, 90)
GRID_COLOUR = (230, 230, 230)


def smoothing_span(total_steps: int) -> int:
    """The moving average's span in steps: it grows with the run, so a long run's trend stays readable while a
    short one still follows its few steps. The web chart (``web/training_run.js``) uses the same rule."""
    return min(100, max(4, round(total_steps / 25)))


def smooth(values: Sequence[float], total_steps: int | None = None) -> list[float]:
    """An exponential moving average over the finite values, debiased so that it starts at the first loss rather
    than at zero, with the span of a run of ``total_steps`` (default: as many as there are values); a
    non-finite value gets None and leaves the average as it was. The same numbers as the web chart's curve."""
    weight = 1 - 2 / (smoothing_span(len(values) if total_steps is None else total_steps) + 1)
    out: list[float | None] = []
    average, count = 0.0, 0
    for value in values:
        if not math.isfinite(value):
            out.append(None)
            continue
        average = weight * average + (1 - weight) * value
        count += 1
        out.append(average / (1 - weight**count))
    return out


def render_loss_plot(losses: Sequence[float], size: tuple[int, int] = (768, 384), title: str = "loss",
                     first_step: int = 1, total_steps: int | None = None) -> Image.Image:
    """The raw losses and their smoothed curve, steps ``first_step`` onwards, of a run planned for
    ``total_steps`` (default: the last step shown), which sets the smoothing as on the node's chart."""
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
    smoothed = [v for v in smooth(losses, total_steps or last_step) if v is not None]
    draw.line([point(i, s) for (i, _), s in zip(finite, smoothed)], fill=SMOOTH_COLOUR, width=2)
    label = f"last {smoothed[-1]:.4g} (smoothed)"
    draw.text((right - draw.textlength(label, font=font), 8), label, fill=SMOOTH_COLOUR, font=font)
    return image
