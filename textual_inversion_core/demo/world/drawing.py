"""Pixels for a scene: a shape in a colour on a patterned grey background, then a picture-wide style."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .scenes import Scene

SIDE = 64
_SUPERSAMPLE = 4  # shapes are drawn 4x larger and scaled down, for smooth edges
RGB = {
    "red": (0.86, 0.1, 0.1), "green": (0.1, 0.7, 0.15), "blue": (0.12, 0.25, 0.9), "yellow": (0.95, 0.85, 0.1),
    "purple": (0.6, 0.15, 0.75), "orange": (1.0, 0.5, 0.05), "white": (0.97, 0.97, 0.97), "black": (0.05, 0.05, 0.05),
}


def _polygon(cx, cy, r, corners, inner=None, turn=-math.pi / 2):
    points = []
    for i in range(corners * (2 if inner else 1)):
        radius = r if not inner or i % 2 == 0 else r * inner
        angle = turn + i * math.pi / (corners if inner else corners / 2)
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _shape_mask(shape: str, cx: float, cy: float, r: float, side: int) -> np.ndarray:
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)

    def disc(x, y, radius, fill=255):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)

    if shape == "circle":
        disc(cx, cy, r)
    elif shape == "ring":
        disc(cx, cy, r)
        disc(cx, cy, r * 0.55, 0)
    elif shape == "square":
        s = r * 0.82
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=255)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy + r * 0.15, r * 1.05, 3), fill=255)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy + r * 0.08, r * 1.05, 5, inner=0.42), fill=255)
    elif shape == "hexagon":
        draw.polygon(_polygon(cx, cy, r, 6, turn=0), fill=255)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r * 0.7, cy), (cx, cy + r), (cx - r * 0.7, cy)], fill=255)
    elif shape == "cross":
        w = r * 0.34
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=255)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=255)
    elif shape == "heart":
        lobe = r * 0.5
        disc(cx - lobe, cy - r * 0.3, lobe)
        disc(cx + lobe, cy - r * 0.3, lobe)
        draw.polygon([(cx - r * 0.98, cy - r * 0.15), (cx + r * 0.98, cy - r * 0.15), (cx, cy + r)], fill=255)
    elif shape == "moon":
        disc(cx, cy, r)
        disc(cx + r * 0.45, cy - r * 0.2, r * 0.8, 0)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(mask, dtype=np.float32) / 255.0


def _background(kind: str, tone: float, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    period = rng.integers(7, 11)
    phase = rng.integers(0, period)
    light, dark = min(tone + 0.18, 0.95), max(tone - 0.18, 0.05)
    if kind == "plain":
        grey = np.full((SIDE, SIDE), tone, np.float32)
    elif kind == "striped":
        # Always upright: told "striped" with no word for which way, the world model drew the mean of both ways,
        # a grid.
        grey = np.where(((x + phase) // (period / 2)) % 2 == 0, light, dark)
    elif kind == "checked":
        grey = np.where((((x + phase) // period) + ((y + phase) // period)) % 2 == 0, light, dark)
    elif kind == "dotted":
        dx, dy = (x + phase) % period - period / 2, (y + phase) % period - period / 2
        grey = np.where(dx * dx + dy * dy <= (period / 4) ** 2, dark, light)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        t = ((x - SIDE / 2) * math.cos(angle) + (y - SIDE / 2) * math.sin(angle)) / SIDE
        grey = tone + 0.5 * t
    elif kind == "grid":
        on_line = ((x + phase) % period < 1.5) | ((y + phase) % period < 1.5)
        grey = np.where(on_line, dark, light)
    else:
        raise ValueError(f"unknown background {kind!r}")
    return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2).astype(np.float32)


def _downsample(mask: np.ndarray) -> np.ndarray:
    return mask.reshape(SIDE, _SUPERSAMPLE, SIDE, _SUPERSAMPLE).mean(axis=(1, 3))


def scene_mask(scene: Scene) -> np.ndarray:
    """The share of each pixel the scene's shape covers, ``[64, 64]`` float32 in [0, 1]: the concept's mask."""
    big = SIDE * _SUPERSAMPLE
    return _downsample(_shape_mask(scene.shape, scene.x * big, scene.y * big, scene.size * big, big))


def draw_scene(scene: Scene) -> np.ndarray:
    """The scene as a ``[64, 64, 3]`` float32 picture in [0, 1]; the same scene always gives the same pixels."""
    rng = np.random.default_rng(scene.seed)
    mask = scene_mask(scene)[..., None]
    ground = _background(scene.background, scene.tone, rng)
    paint = np.broadcast_to(np.array(RGB[scene.colour], np.float32), ground.shape).copy()
    if scene.fill == "dotted":
        y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
        dots = ((x % 6 - 3) ** 2 + (y % 6 - 3) ** 2) <= 2.3
        paint[dots] = RGB[scene.fill_colour]
    picture = ground * (1 - mask) + paint * mask
    return _apply_style(picture, mask, ground, paint, scene.style, rng)


def _apply_style(picture, mask, ground, paint, style, rng) -> np.ndarray:
    if style == "photo":
        out = picture + rng.normal(0, 0.015, picture.shape)
    elif style == "outline":
        # Light paper that keeps a faint trace of the background, and the shape's edge in its own colour.
        edge = np.zeros_like(mask)
        m = mask[..., 0]
        edge[..., 0] = np.clip(
            np.abs(np.roll(m, 1, 0) - m) + np.abs(np.roll(m, 1, 1) - m)
            + np.abs(np.roll(m, -1, 0) - m) + np.abs(np.roll(m, -1, 1) - m), 0, 1)
        # Dilated to about three pixels: a hairline is lost in a 4x latent grid.
        edge = np.clip(edge * 2, 0, 1)
        edge = np.max([np.roll(np.roll(edge, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
        paper = 0.72 + 0.25 * ground
        out = paper * (1 - edge) + paint * edge
    elif style == "pixelated":
        blocks = picture.reshape(SIDE // 4, 4, SIDE // 4, 4, 3).mean(axis=(1, 3))
        out = np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)
    elif style == "faded":
        out = 0.38 + 0.5 * picture + rng.normal(0, 0.015, picture.shape)
    elif style == "dark":
        # Every hue kept, as in faded: the style is one change to the whole picture, whatever its colour words.
        out = 0.05 + 0.5 * picture + rng.normal(0, 0.015, picture.shape)
    else:
        raise ValueError(f"unknown style {style!r}")
    return np.clip(out, 0, 1).astype(np.float32)


def to_image(picture: np.ndarray) -> Image.Image:
    return Image.fromarray((picture * 255 + 0.5).astype(np.uint8))
