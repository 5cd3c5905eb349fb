"""Embeddings carried inside a picture, as AUTOMATIC1111 shares them (``.png``, ``.webp``).

A1111 stores the embedding's dictionary twice, as JSON in which each tensor is ``{"TORCHTENSOR": nested
lists}``:

- base64-encoded in the PNG text chunk ``sd-ti-embedding``;
- zlib-compressed in two pixel strips added at the picture's left and right, each cut off by one black
  column. Each data byte is split into nibbles: the left strip's pixels carry the low nibbles, the right
  strip's the high ones, in the low four bits of every channel, row by row, XOR-ed with the low bits of a
  linear congruential sequence (a=1664525, c=1013904223, m=2**32, taken mod 255). The high four bits are
  decoration. Pictures that went through a tool dropping text chunks keep the strips, so both are read.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from .errors import EmbeddingFileError

TEXT_CHUNK = "sd-ti-embedding"
TENSOR_TAG = "TORCHTENSOR"
CHANNELS = 3
# Far above the JSON of 75 vectors for both SDXL encoders (~4 MB); stops a zip bomb hidden in the strips.
MAX_JSON_BYTES = 32 * 1024 * 1024

_LCG_A, _LCG_C, _LCG_M = 1664525, 1013904223, 2**32


def lcg_sequence(count: int) -> np.ndarray:
    """The first ``count`` values of A1111's generator (seed 0), as uint8.

    Each state is ``a * previous + c (mod m)``; blocks of states are produced from earlier blocks by the
    composed step (``a**k``, ``c * (1 + a + ... + a**(k-1))``), so a large picture needs no Python loop per pixel.
    Products of two values below 2**32 fit in uint64, so the arithmetic is exact.
    """
    states = np.empty(count, dtype=np.uint64)
    if count == 0:
        return states.astype(np.uint8)
    states[0] = _LCG_C  # the state after seed 0
    filled, multiplier, increment = 1, _LCG_A, _LCG_C  # the step that jumps `filled` states ahead
    while filled < count:
        take = min(filled, count - filled)
        states[filled : filled + take] = (states[:take] * np.uint64(multiplier) + np.uint64(increment)) % np.uint64(
            _LCG_M
        )
        multiplier, increment = multiplier * multiplier % _LCG_M, (increment * multiplier + increment) % _LCG_M
        filled += take
    return (states % np.uint64(255)).astype(np.uint8)


def _xor_sequence(block: np.ndarray) -> np.ndarray:
    return block ^ (lcg_sequence(block.size).reshape(block.shape) & 0x0F)


class _TensorEncoder(json.JSONEncoder):
    def default(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return {TENSOR_TAG: obj.detach().cpu().to(torch.float32).tolist()}
        return super().default(obj)


def _tensor_from_json(obj: dict[str, Any]) -> Any:
    if set(obj) != {TENSOR_TAG}:
        return obj
    try:
        array = np.asarray(obj[TENSOR_TAG], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"a {TENSOR_TAG} entry is not a rectangular list of numbers") from err
    return torch.from_numpy(array).to(torch.float32)


def state_to_json(state: dict[str, Any]) -> bytes:
    return json.dumps(state, cls=_TensorEncoder).encode("utf-8")


def state_from_json(data: bytes) -> Any:
    return json.loads(data, object_hook=_tensor_from_json)


def _crop_black(pixels: np.ndarray) -> np.ndarray | None:
    """The bounding box of the pixels whose channels are all non-zero, as A1111 crops before decoding."""
    lit = (pixels > 0).all(axis=2)
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    if rows.size == 0:
        return None
    return pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_JSON_BYTES)
    except zlib.error:
        return None
    # The strips repeat the stream to fill whole rows, so data after its end is expected.
    return out if inflater.eof else None


def data_from_strips(image: Image.Image) -> bytes | None:
    """The JSON hidden in the picture's side strips, or None when it has none."""
    pixels = _crop_black(np.asarray(image.convert("RGB"), dtype=np.uint8))
    if pixels is None:
        return None
    low_bits = pixels & 0x0F
    black_columns = np.flatnonzero(low_bits.sum(axis=(0, 2)) == 0)
    if black_columns.size < 2:
        return None
    low = low_bits[:, : black_columns[0]]
    high = low_bits[:, black_columns[-1] + 1 :]
    if low.size == 0 or low.shape != high.shape:
        return None
    return _inflate(((_xor_sequence(high) << 4) | _xor_sequence(low)).tobytes())


def _decoration(vectors: torch.Tensor | None, shape: tuple[int, ...]) -> np.ndarray:
    """High nibbles for the strips: shades of the first vector, as A1111 styles them, never fully dark.

    Keeping every channel above zero means A1111's black-border crop can never trim a strip.
    """
    if vectors is None:
        shades = np.full(1, 0x80, dtype=np.uint8)
    else:
        first = vectors.reshape(-1, vectors.shape[-1])[0].abs().to(torch.float64).numpy()
        shades = (first / max(first.max(), 1e-12) * 255).astype(np.uint8)
    return np.maximum(np.resize(shades, shape) & 0xF0, 0x10).astype(np.uint8)


def _first_tensor(state: dict[str, Any]) -> torch.Tensor | None:
    for value in state.values():
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, dict) and (found := _first_tensor(value)) is not None:
            return found
    return None


def with_data_strips(picture: Image.Image, state: dict[str, Any]) -> Image.Image:
    """``picture`` between two strips holding ``state`` the way A1111 hides it."""
    picture = picture.convert("RGB")
    packed = np.frombuffer(zlib.compress(state_to_json(state), 9), dtype=np.uint8)
    per_column = picture.height * CHANNELS
    columns = -(-packed.size // per_column)
    shape = (picture.height, columns, CHANNELS)
    decoration = _decoration(_first_tensor(state), shape)
    low = _xor_sequence(np.resize(packed & 0x0F, shape)) | decoration
    high = _xor_sequence(np.resize(packed >> 4, shape)) | decoration[:, ::-1]
    canvas = Image.new("RGB", (picture.width + 2 * columns + 2, picture.height), (0, 0, 0))
    canvas.paste(Image.fromarray(low, "RGB"), (0, 0))
    canvas.paste(picture, (columns + 1, 0))
    canvas.paste(Image.fromarray(high, "RGB"), (columns + 1 + picture.width + 1, 0))
    return canvas


def title_card(title: str, subtitle: str, size: int = 512) -> Image.Image:
    """A plain picture naming the embedding, for when no preview picture is given."""
    card = Image.new("RGB", (size, size), (28, 30, 38))
    draw = ImageDraw.Draw(card)
    for text, font_size, y in ((title, size // 10, size * 0.42), (subtitle, size // 24, size * 0.58)):
        font = ImageFont.load_default(size=font_size)
        draw.text((size / 2, y), text, font=font, fill=(235, 235, 240), anchor="mm")
    return card


def encode_png(state: dict[str, Any], picture: Image.Image) -> bytes:
    """A PNG carrying ``state`` both as A1111's text chunk and in side strips."""
    info = PngImagePlugin.PngInfo()
    info.add_text(TEXT_CHUNK, base64.b64encode(state_to_json(state)).decode("ascii"))
    out = io.BytesIO()
    with_data_strips(picture, state).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def read_picture(path: Path) -> Any:
    """The embedding dictionary inside a picture: the text chunk if present, else the side strips."""
    try:
        with Image.open(path) as image:
            image.load()
            encoded = (getattr(image, "text", None) or {}).get(TEXT_CHUNK)
            hidden = None if encoded is not None else data_from_strips(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise EmbeddingFileError(
            f"{path} could not be read as a picture ({err}); it is truncated or damaged. Download it again."
        ) from err
    if encoded is None and hidden is None:
        raise EmbeddingFileError(
            f"{path} is a picture without an embedding: it has neither A1111's {TEXT_CHUNK!r} text nor data strips "
            "at its sides (it may be a plain preview image, or one re-saved with lossy compression)."
        )
    source = f"its {TEXT_CHUNK} text" if encoded is not None else "the data strips at its sides"
    try:
        return state_from_json(base64.b64decode(encoded, validate=True) if encoded is not None else hidden)
    except (ValueError, UnicodeDecodeError) as err:
        raise EmbeddingFileError(f"{path}: {source} is damaged ({err}). Download the picture again.") from err
