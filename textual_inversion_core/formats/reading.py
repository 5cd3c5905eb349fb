"""Reading any community embedding file: its container is recognised from its first bytes, not its name."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from ..embedding import Embedding, EmbeddingError
from .errors import EmbeddingFileError
from .layouts import embedding_from_state
from .metadata import decode_header
from .picture import read_picture
from .safe_pickle import read_torch_pickle

# Even 75 vectors for both SDXL encoders take 0.6 MB; anything this large is a model, not an embedding.
MAX_FILE_BYTES = 64 * 1024 * 1024
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
PICTURE_SUFFIXES = (".png", ".webp")
# Every ending load_embedding reads: safetensors, PyTorch pickles (read without running code), A1111 pictures.
READABLE_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES, *PICTURE_SUFFIXES)
# What diffusers' textual-inversion scripts write; SDXL adds learned_embeds_2.* for the second text encoder.
DIFFUSERS_NAMES = ("learned_embeds.safetensors", "learned_embeds.bin")
SECOND_ENCODER_SUFFIX = "_2"


def _container(path: Path, head: bytes, size: int) -> str:
    if head.startswith(b"\x89PNG\r\n\x1a\n") or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "picture"
    if head.startswith(b"PK\x03\x04"):
        return "pickle"  # torch.save's zip format
    if len(head) >= 9 and head[8:9] == b"{":
        (header_size,) = struct.unpack("<Q", head[:8])
        if 8 + header_size > size:
            raise EmbeddingFileError(
                f"{path} is truncated: its safetensors header announces {header_size} bytes but the file holds "
                f"{size}. Download or export it again."
            )
        return "safetensors"
    if path.suffix.lower() == ".safetensors":
        raise EmbeddingFileError(f"{path} is truncated or damaged: it has no safetensors header. Download it again.")
    # torch.save's legacy format and plain pickles. The restricted reader refuses anything but tensors, so
    # handing it an unrecognised .pt/.bin costs nothing and names any code the file asks for.
    if head.startswith(b"\x80") or path.suffix.lower() in PICKLE_SUFFIXES:
        return "pickle"
    raise EmbeddingFileError(
        f"{path} is not an embedding file this reader knows (not safetensors, PyTorch, PNG or WebP). If it was "
        "downloaded, check that it is not a web page saved under the file's name."
    )


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata()
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as err:
        raise EmbeddingFileError(
            f"{path} is truncated or damaged and could not be read as safetensors ({err}). Download or export "
            "it again."
        ) from err
    return tensors, decode_header(header)


def _read_one(path: Path, token: str | None) -> Embedding:
    if not path.exists():
        raise EmbeddingFileError(f"{path} does not exist; check the path and the file name.")
    if path.is_dir():
        raise EmbeddingFileError(f"{path} is a folder without {' or '.join(DIFFUSERS_NAMES)}; give an embedding file.")
    size = path.stat().st_size
    if size == 0:
        raise EmbeddingFileError(f"{path} is empty (0 bytes); it was not saved or downloaded completely.")
    with open(path, "rb") as handle:
        head = handle.read(16)
    container = _container(path, head, size)
    if container != "picture" and size > MAX_FILE_BYTES:
        raise EmbeddingFileError(
            f"{path} is {size / 2**20:.0f} MB, far larger than any embedding; it is probably a checkpoint or "
            "LoRA. Load it with the matching loader instead."
        )
    metadata: dict[str, Any] = {}
    if container == "safetensors":
        state, metadata = _read_safetensors(path)
    elif container == "pickle":
        state = read_torch_pickle(path)
    else:
        state = read_picture(path)
    try:
        return embedding_from_state(state, token=token, fallback_name=path.stem, metadata=metadata)
    except EmbeddingFileError:
        raise
    except EmbeddingError as err:
        raise EmbeddingFileError(f"{path}: {err}") from err


def _second_encoder_file(path: Path) -> Path | None:
    """The other half of a diffusers SDXL pair: ``name.ext`` goes with ``name_2.ext``."""
    stem = path.stem
    other = stem[: -len(SECOND_ENCODER_SUFFIX)] if stem.endswith(SECOND_ENCODER_SUFFIX) else stem + SECOND_ENCODER_SUFFIX
    candidate = path.with_name(other + path.suffix)
    return candidate if candidate.is_file() else None


def _with_pair(path: Path, embedding: Embedding, token: str | None) -> Embedding:
    """Join a diffusers SDXL pair (one file per text encoder) when ``path`` is half of one."""
    if set(embedding.vectors) not in ({"clip_l"}, {"clip_g"}):
        return embedding
    other_path = _second_encoder_file(path)
    if other_path is None:
        return embedding
    try:
        other = _read_one(other_path, token or embedding.token)
    except EmbeddingFileError:
        return embedding  # a neighbour that is not an embedding is no half of a pair
    if set(other.vectors) | set(embedding.vectors) != {"clip_l", "clip_g"}:
        return embedding
    if other.num_vectors != embedding.num_vectors:
        raise EmbeddingFileError(
            f"{path} and {other_path} look like the two halves of an SDXL embedding but hold {embedding.num_vectors} "
            f"and {other.num_vectors} vectors; both text encoders need the same number."
        )
    return Embedding(
        embedding.token, {**embedding.vectors, **other.vectors}, {**other.metadata, **embedding.metadata}
    )


def check_family(embedding: Embedding, family: str, path: Path | str) -> None:
    """Refuse an embedding that was not made for ``family``, naming the file and what to use instead."""
    try:
        embedding.check_family(family, where=str(path))
    except EmbeddingError as err:
        raise EmbeddingFileError(str(err)) from err


def load_embedding(path: str | os.PathLike, token: str | None = None, *, family: str | None = None) -> Embedding:
    """Read an embedding file of any layout the popular trainers write.

    ``path`` is a ``.safetensors``, ``.pt``/``.bin`` (read without running code), ``.png``/``.webp`` (A1111
    picture), or a diffusers output folder. Half of a diffusers SDXL pair (``x.safetensors`` +
    ``x_2.safetensors``) brings in the other half. ``token`` chooses among several placeholders and names the
    word; by default the file's own name, else its stem. With ``family`` (``sd1``, ``sd2``, ``sdxl``) the
    vectors are checked against that model's text encoders. Raises ``EmbeddingFileError`` (``Unsafe...`` for
    files that would run code) with a message naming the file and what to do.
    """
    path = Path(path)
    if path.is_dir():
        found = next((path / name for name in DIFFUSERS_NAMES if (path / name).is_file()), None)
        path = found or path
    embedding = _with_pair(path, _read_one(path, token), token)
    if family is not None:
        check_family(embedding, family, path)
    return embedding
