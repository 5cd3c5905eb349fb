"""Embeddings inside pictures, as AUTOMATIC1111 shares them: the ``sd-ti-embedding`` text chunk and the data
hidden in pixel strips at the picture's sides are both read; our ``a1111-png`` writer produces both."""

import base64
import io
import json
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, PngImagePlugin

from textual_inversion_core.embedding import Embedding
from textual_inversion_core.formats import EmbeddingFileError, load_embedding, save_embedding
from textual_inversion_core.formats.picture import lcg_sequence


def vectors(n: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


# --- What A1111 writes, restated from its description (modules/textual_inversion/image_embedding.py) --------

def a1111_json(data: dict) -> str:
    # Tensors become {"TORCHTENSOR": nested lists}.
    return json.dumps(data, default=lambda t: {"TORCHTENSOR": t.tolist()})


def a1111_lcg():
    seed = 0
    while True:
        seed = (1664525 * seed + 1013904223) % 2**32
        yield seed % 255


def a1111_xor(block: np.ndarray) -> np.ndarray:
    generator = a1111_lcg()
    noise = np.array([next(generator) for _ in range(block.size)], dtype=np.uint8).reshape(block.shape)
    return block ^ (noise & 0x0F)


def a1111_dots(block: np.ndarray, shades: np.ndarray) -> np.ndarray:
    # High nibbles: staggered 6-pixel dots every 8 pixels, shaded from the first vector.
    canvas = Image.new("RGB", (block.shape[1], block.shape[0]))
    draw = ImageDraw.Draw(canvas)
    index = 0
    for x in range(-6, canvas.width, 8):
        for row, y in enumerate(range(-6, canvas.height, 8)):
            offset = 4 if row % 2 == 0 else 0
            shade = int(shades[index % len(shades)])
            index += 1
            draw.ellipse((x + offset, y, x + 6 + offset, y + 6), fill=(shade, shade, shade))
    return block ^ (np.asarray(canvas) & 0xF0)


def a1111_strips(picture: Image.Image, data: dict) -> Image.Image:
    packed = np.frombuffer(zlib.compress(a1111_json(data).encode(), 9), np.uint8)
    height = picture.height
    # A1111 pads to whole rows, then to whole strips of three channels, repeating the data.
    size = packed.size + (height - packed.size % height)
    size += height * 3 - size % (height * 3)
    low = np.resize(packed & 0x0F, size).reshape(height, -1, 3)
    high = np.resize(packed >> 4, size).reshape(height, -1, 3)
    first = np.abs(next(iter(data["string_to_param"].values())).numpy()[0][:1024])
    shades = (first / first.max() * 255).astype(np.uint8)
    low = a1111_xor(a1111_dots(low, shades))
    high = a1111_xor(a1111_dots(high, shades[::-1]))
    width = low.shape[1]
    canvas = Image.new("RGB", (picture.width + 2 * width + 2, height))
    canvas.paste(Image.fromarray(low, "RGB"), (0, 0))
    canvas.paste(picture, (width + 1, 0))
    canvas.paste(Image.fromarray(high, "RGB"), (width + 1 + picture.width + 1, 0))
    return canvas


def a1111_data(v: torch.Tensor, name: str = "pic-style") -> dict:
    return {"string_to_token": {"*": 265}, "string_to_param": {"*": v}, "name": name, "step": 500,
            "sd_checkpoint": "a9263745", "sd_checkpoint_name": "v1-5-pruned"}


def preview(size: int = 64) -> Image.Image:
    # A stand-in for a generated preview: a gradient with no black rows or columns.
    ramp = np.linspace(40, 220, size, dtype=np.uint8)
    return Image.fromarray(np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)),
                                     np.full((size, size), 128, np.uint8)], axis=2), "RGB")


def save_png(image: Image.Image, path, text: dict | None = None):
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    image.save(path, "PNG", pnginfo=info)
    return path


# --- Reading ------------------------------------------------------------------------------------------------

def test_the_generator_matches_a1111s_own_reference_values():
    # A1111 checks its generator against these: the first values, and the sum of the next 100000.
    sequence = lcg_sequence(100_100)
    assert sequence[:8].tolist() == [253, 242, 127, 44, 157, 27, 239, 133]
    assert int(sequence[100:].sum(dtype=np.int64)) == 12731374


def test_a1111_picture_with_text_chunk_and_strips(tmp_path):
    # Given a picture exactly as A1111 saves it: text chunk and strips
    v = vectors(2, 768)
    data = a1111_data(v)
    text = {"sd-ti-embedding": base64.b64encode(a1111_json(data).encode()).decode()}
    path = save_png(a1111_strips(preview(), data), tmp_path / "pic-style-500.png", text)
    # When loaded, then the vectors, the name and the training facts come back
    embedding = load_embedding(path)
    assert torch.equal(embedding.vectors["clip_l"], v)
    assert embedding.token == "pic-style"
    assert embedding.metadata["steps"] == 500 and embedding.metadata["base_model_hash"] == "a9263745"


def test_text_chunk_alone(tmp_path):
    v = vectors(1, 768)
    text = {"sd-ti-embedding": base64.b64encode(a1111_json(a1111_data(v)).encode()).decode()}
    path = save_png(preview(), tmp_path / "chunk.png", text)
    assert torch.equal(load_embedding(path).vectors["clip_l"], v)


@pytest.mark.parametrize("suffix, options", [(".png", {}), (".webp", {"lossless": True})])
def test_strips_alone_after_the_text_was_stripped(tmp_path, suffix, options):
    # Given a picture whose text chunks were lost (re-saved, or WebP which has none), strips intact
    v = vectors(3, 768, seed=2)
    path = tmp_path / f"strips{suffix}"
    a1111_strips(preview(), a1111_data(v, "stripped")).save(path, **options)
    # Then the strips alone give the embedding
    embedding = load_embedding(path)
    assert torch.equal(embedding.vectors["clip_l"], v)
    assert embedding.token == "stripped"


def test_a_plain_picture_is_refused_as_holding_no_embedding(tmp_path):
    path = save_png(preview(), tmp_path / "my-cat.preview.png")
    with pytest.raises(EmbeddingFileError, match="picture without an embedding"):
        load_embedding(path)


def test_lossy_recompression_destroys_the_strips_and_says_so(tmp_path):
    path = tmp_path / "lossy.webp"
    a1111_strips(preview(), a1111_data(vectors(1, 768))).save(path, quality=80)
    with pytest.raises(EmbeddingFileError, match="lossy compression"):
        load_embedding(path)


def test_a_damaged_text_chunk_is_named(tmp_path):
    path = save_png(preview(), tmp_path / "bad.png", {"sd-ti-embedding": "not base64 at all!"})
    with pytest.raises(EmbeddingFileError, match="sd-ti-embedding text is damaged"):
        load_embedding(path)


def test_a_truncated_picture_is_refused(tmp_path):
    path = save_png(a1111_strips(preview(), a1111_data(vectors(1, 768))), tmp_path / "cut.png")
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(EmbeddingFileError, match="truncated or damaged"):
        load_embedding(path)


# --- Writing ------------------------------------------------------------------------------------------------

def without_text(path, tmp_path):
    copy = tmp_path / "copy.png"
    Image.open(path).save(copy)  # PIL drops text chunks unless asked to keep them
    assert "sd-ti-embedding" not in Image.open(copy).text
    return copy


@pytest.mark.parametrize("vectors_by_encoder", [
    {"clip_l": vectors(2, 768)},
    {"clip_h": vectors(75, 1024)},
    {"clip_l": vectors(2, 768), "clip_g": vectors(2, 1280, seed=1)},
], ids=["sd1", "sd2-75-vectors", "sdxl"])
def test_our_picture_carries_the_embedding_twice(tmp_path, vectors_by_encoder):
    # Given an embedding written as an A1111 picture
    embedding = Embedding("<pic>", vectors_by_encoder, {"steps": 20})
    path = save_embedding(embedding, tmp_path / "pic.png")[0]
    # Then both the text chunk and, with the text removed, the strips give the same vectors back
    for source in (path, without_text(path, tmp_path)):
        loaded = load_embedding(source)
        for name, tensor in vectors_by_encoder.items():
            assert torch.equal(loaded.vectors[name], tensor), (source.name, name)


def test_a_given_picture_is_kept_between_the_strips(tmp_path):
    # Given a preview with black bands top and bottom (which A1111's reader crops away)
    picture = preview(48)
    pixels = np.asarray(picture).copy()
    pixels[:5] = 0
    pixels[-5:] = 0
    picture = Image.fromarray(pixels, "RGB")
    embedding = Embedding("<pic>", {"clip_l": vectors(1, 768)})
    path = save_embedding(embedding, tmp_path / "pic.png", picture=picture)[0]
    saved = np.asarray(Image.open(path).convert("RGB"))
    # Then the picture sits unchanged between two black separator columns
    strip = (saved.shape[1] - 48 - 2) // 2
    assert np.array_equal(saved[:, strip + 1 : strip + 1 + 48], pixels)
    assert not saved[:, strip].any() and not saved[:, strip + 49].any()
    # and the strips still decode without the text chunk: their pixels are never black, so no crop trims them
    assert torch.equal(load_embedding(without_text(path, tmp_path)).vectors["clip_l"], embedding.vectors["clip_l"])


def test_without_a_picture_a_title_card_is_drawn(tmp_path):
    path = save_embedding(Embedding("<card>", {"clip_l": vectors(1, 768)}), tmp_path / "card.png")[0]
    image = Image.open(path)
    assert image.height == 512 and image.width > 512
    assert "sd-ti-embedding" in image.text


def test_a_picture_with_another_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="only be stored with the a1111-png format"):
        save_embedding(Embedding("<x>", {"clip_l": vectors(1, 768)}), tmp_path / "x.safetensors",
                       picture=preview())


def test_the_png_bytes_are_a_valid_png(tmp_path):
    path = save_embedding(Embedding("<x>", {"clip_l": vectors(1, 768)}), tmp_path / "x.png")[0]
    Image.open(io.BytesIO(path.read_bytes())).verify()
