"""Concept pictures: any ordinary picture folder becomes same-size training images."""

import struct
import zlib

import pytest
import torch
from PIL import Image

from textual_inversion_core.data import ConceptDataError, load_concept_folder


def save(path, size, colour, mode="RGB", **kwargs):
    Image.new(mode, size, colour).save(path, **kwargs)


def test_every_supported_picture_is_loaded_at_the_training_size_with_its_caption(tmp_path):
    # Given pictures of several formats and sizes, one with a caption sidecar, and files to ignore
    save(tmp_path / "a.png", (300, 200), (255, 0, 0))
    save(tmp_path / "b.JPG", (120, 400), (0, 255, 0))
    save(tmp_path / "c.webp", (64, 64), (0, 0, 255))
    save(tmp_path / "d.bmp", (90, 90), (9, 9, 9))
    (tmp_path / "a.txt").write_text("a red\n  square ", encoding="utf-8")
    save(tmp_path / ".hidden.png", (64, 64), (1, 1, 1))
    (tmp_path / "notes.md").write_text("not a picture")
    # When the folder is loaded at 128 px
    images = load_concept_folder(tmp_path, resolution=128)
    # Then the four pictures come back, sorted, 128x128 RGB in [0, 1], caption whitespace folded
    assert [i.name for i in images] == ["a.png", "b.JPG", "c.webp", "d.bmp"]
    assert all(i.pixels.shape == (3, 128, 128) and i.pixels.dtype == torch.float32 for i in images)
    assert images[0].caption == "a red square" and images[1].caption == ""
    assert torch.allclose(images[0].pixels[:, 64, 64], torch.tensor([1.0, 0.0, 0.0]))


def test_center_crop_keeps_the_middle_and_none_keeps_the_whole_picture(tmp_path):
    # Given a wide picture: red left third, green middle, blue right third
    image = Image.new("RGB", (300, 100), (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, 100, 100))
    image.paste((0, 0, 255), (200, 0, 300, 100))
    image.save(tmp_path / "wide.png")
    centre = load_concept_folder(tmp_path, resolution=64, crop="center")[0].pixels
    whole = load_concept_folder(tmp_path, resolution=64, crop="none")[0].pixels
    # Then the crop shows only the green middle, while "none" still shows red at the left edge
    assert centre[1].min() > 0.9
    assert whole[0, 32, 2] > 0.9 and whole[2, 32, 61] > 0.9


def test_exif_orientation_is_honoured(tmp_path):
    # Given a portrait picture stored sideways with an EXIF "rotate 90" tag
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 100, 100))  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    pixels = load_concept_folder(tmp_path, resolution=64, crop="none")[0].pixels
    # Then the displayed picture has the white half on top
    assert pixels[:, 5, 32].mean() > 0.9 and pixels[:, 58, 32].mean() < 0.1


def test_transparency_is_composited_onto_white(tmp_path):
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 32, 64))
    image.save(tmp_path / "cutout.png")
    pixels = load_concept_folder(tmp_path, resolution=64)[0].pixels
    assert torch.allclose(pixels[:, 10, 10], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(pixels[:, 10, 50], torch.tensor([1.0, 1.0, 1.0]))


def test_a_missing_or_empty_folder_says_what_to_do(tmp_path):
    with pytest.raises(ConceptDataError, match="does not exist"):
        load_concept_folder(tmp_path / "nope")
    with pytest.raises(ConceptDataError, match="No pictures in .*3-5 pictures"):
        load_concept_folder(tmp_path)


def test_an_unreadable_picture_is_named(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not really a png")
    with pytest.raises(ConceptDataError, match="broken.png"):
        load_concept_folder(tmp_path, resolution=64)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims this size: Pillow judges the size from the header, before any pixel."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def test_a_picture_past_pillows_pixel_limit_is_named_with_the_limit(tmp_path):
    # Given a folder with a good picture and one claiming 20000 x 10000 pixels, past Pillow's 178 M pixel limit
    save(tmp_path / "good.png", (64, 64), (0, 0, 0))
    (tmp_path / "huge.png").write_bytes(png_claiming(20_000, 10_000))
    # When the folder is loaded, then the picture is refused like a broken one: by name, with the limit
    with pytest.raises(ConceptDataError, match=r"huge\.png: it has more pixels than the 178,956,970 .*scale"):
        load_concept_folder(tmp_path, resolution=64)


@pytest.mark.parametrize("resolution", [0, 100, 500])
def test_resolution_must_be_a_multiple_of_64(tmp_path, resolution):
    with pytest.raises(ConceptDataError, match="multiple of 64"):
        load_concept_folder(tmp_path, resolution=resolution)


def test_a_mask_comes_from_a_mask_file_beside_the_picture_or_from_its_alpha(tmp_path):
    # Given a picture with "cat.mask.png" beside it (left half white), a picture with transparency (its right
    # half transparent), and an opaque picture without a mask
    save(tmp_path / "cat.jpg", (128, 64), (200, 100, 50))
    mask = Image.new("L", (128, 64), 0)
    mask.paste(255, (0, 0, 64, 64))
    mask.save(tmp_path / "cat.mask.png")
    cut_out = Image.new("RGBA", (64, 64), (0, 0, 255, 255))
    cut_out.paste((0, 0, 0, 0), (32, 0, 64, 64))
    cut_out.save(tmp_path / "dog.png")
    save(tmp_path / "plain.png", (64, 64), (9, 9, 9))
    # When the folder is loaded (a centre crop of the wide picture)
    images = load_concept_folder(tmp_path, resolution=64, crop="none")
    # Then the mask file is no picture of its own, and each mask is cropped and scaled as its picture is
    assert [i.name for i in images] == ["cat.jpg", "dog.png", "plain.png"]
    cat, dog, plain = images
    assert cat.mask.shape == (1, 64, 64) and cat.mask[0, 10, 5] == 1.0 and cat.mask[0, 10, 60] == 0.0
    assert dog.mask[0, 10, 5] == 1.0 and dog.mask[0, 10, 60] == 0.0
    assert plain.mask is None


def test_a_mask_of_another_size_than_its_picture_is_named_with_both_sizes(tmp_path):
    # Given a mask file that does not match its picture
    save(tmp_path / "cat.png", (100, 100), (200, 100, 50))
    save(tmp_path / "cat.mask.png", (50, 50), 255, mode="L")
    # Then loading refuses, naming the mask, the picture and both sizes
    with pytest.raises(ConceptDataError, match=r"cat\.mask\.png is 50x50 but its picture .*cat\.png is 100x100"):
        load_concept_folder(tmp_path, resolution=64)
