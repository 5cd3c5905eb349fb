"""Pictures of a made-up concept for the demo and the tests: a striped ball, drawn differently each time."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw


def draw_concept_pictures(folder: Path, count: int = 4, seed: int = 0) -> None:
    """A striped ball on a plain ground, placed and sized differently in each picture."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        size = 256
        image = Image.new("RGB", (size, size), (40 + rng.randrange(30), 70 + rng.randrange(30), 160))
        draw = ImageDraw.Draw(image)
        radius = rng.randrange(60, 100)
        cx, cy = rng.randrange(radius, size - radius), rng.randrange(radius, size - radius)
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=(220, 40, 30))
        for offset in range(-radius, radius, 24):
            draw.rectangle([cx - radius, cy + offset, cx + radius, cy + offset + 10], fill=(250, 210, 40))
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=(20, 20, 20), width=4)
        image.save(folder / f"ball_{i}.png")
        (folder / f"ball_{i}.txt").write_text("a striped ball on a blue ground\n", encoding="utf-8")
