"""Writing embeddings that ComfyUI, AUTOMATIC1111/Forge, diffusers and kohya accept, never clobbering a file."""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

import safetensors.torch
import torch
from PIL import Image

from ..embedding import Embedding, EmbeddingError
from ..errors import UserError
from ..families import display_name
from .errors import EmbeddingFileError
from .layouts import a1111_state, diffusers_states, safetensors_state
from .metadata import DISTRIBUTION, FAMILY_FIELD, TOKEN_FIELD, TOOL_FIELD, TOOL_VERSION_FIELD, encode_header, tool_version
from .picture import encode_png, title_card
from .reading import READABLE_SUFFIXES, SECOND_ENCODER_SUFFIX

# The formats save_embedding writes, and the file name endings each may carry (the first is the default).
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "safetensors": (".safetensors",),
    "a1111-pt": (".pt",),
    "diffusers": (".safetensors", ".bin"),
    "a1111-png": (".png",),
}
EMBEDDING_FORMATS = tuple(FORMAT_SUFFIXES)
# A format chosen from the file name; .safetensors means our default layout, not the diffusers one.
_FORMAT_BY_SUFFIX = {".safetensors": "safetensors", ".pt": "a1111-pt", ".bin": "diffusers", ".png": "a1111-png"}


def _target(path: Path, format: str | None) -> tuple[Path, str]:
    suffix = path.suffix.lower()
    if format is None:
        format = _FORMAT_BY_SUFFIX.get(suffix, "safetensors")
    if format not in FORMAT_SUFFIXES:
        raise UserError(f"Unknown embedding format {format!r}; choose one of {', '.join(EMBEDDING_FORMATS)}.")
    allowed = FORMAT_SUFFIXES[format]
    if suffix in allowed:
        return path, format
    if suffix in READABLE_SUFFIXES:
        raise EmbeddingFileError(
            f"Cannot write {path}: {format} files end in {' or '.join(allowed)}, and other programs choose how to "
            f"read a file by its ending. Name it {path.with_suffix(allowed[0]).name}."
        )
    return path.with_name(path.name + allowed[0]), format


def _header(embedding: Embedding) -> dict[str, str]:
    fields = {**embedding.metadata, TOKEN_FIELD: embedding.token}
    if embedding.family is not None:
        fields[FAMILY_FIELD] = embedding.family
    return encode_header(fields)


def _own_storage(state: dict) -> dict:
    # torch.save stores a view's whole underlying storage (a row of a 49408-token table saves the table).
    return {
        key: value.clone() if isinstance(value, torch.Tensor) else _own_storage(value) if isinstance(value, dict) else value
        for key, value in state.items()
    }


def _pickled(state: dict) -> bytes:
    out = io.BytesIO()
    torch.save(_own_storage(state), out)
    return out.getvalue()


def _title(embedding: Embedding) -> Image.Image:
    details = [f"{embedding.num_vectors} vector{'s' if embedding.num_vectors > 1 else ''}"]
    if embedding.family:
        details.append(display_name(embedding.family))
    if isinstance(embedding.metadata.get("steps"), int):
        details.append(f"{embedding.metadata['steps']} steps")
    return title_card(embedding.token, " · ".join(details))


def _files(embedding: Embedding, path: Path, format: str, picture: Image.Image | None) -> list[tuple[Path, bytes]]:
    header = _header(embedding)
    if format == "safetensors":
        return [(path, safetensors.torch.save(_own_storage(safetensors_state(embedding)), metadata=header))]
    if format == "a1111-pt":
        return [(path, _pickled(a1111_state(embedding)))]
    if format == "a1111-png":
        return [(path, encode_png(a1111_state(embedding), picture if picture is not None else _title(embedding)))]
    files = []
    for index, (_, state) in enumerate(diffusers_states(embedding)):
        # diffusers' SDXL scripts write one file per text encoder: name.ext for the first, name_2.ext after.
        target = path if index == 0 else path.with_name(f"{path.stem}{SECOND_ENCODER_SUFFIX}{path.suffix}")
        if path.suffix.lower() == ".bin":
            files.append((target, _pickled(state)))
        else:
            files.append((target, safetensors.torch.save(_own_storage(state), metadata=header)))
    return files


def _write_atomically(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to a temporary file beside ``path``, then move it into place in one step.

    Without ``overwrite`` the move is a hard link, which fails rather than replace a file that appeared
    meanwhile; file systems without hard links fall back to checking first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise _exists(path) from None
        except OSError:
            if path.exists():
                raise _exists(path) from None
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _exists(path: Path) -> EmbeddingFileError:
    return EmbeddingFileError(f"{path} already exists; choose another name, or allow overwriting it.")


def save_embedding(
    embedding: Embedding,
    path: str | os.PathLike,
    format: str | None = None,
    overwrite: bool = False,
    *,
    picture: Image.Image | None = None,
) -> list[Path]:
    """Write ``embedding`` and return the files written.

    ``format`` is one of ``EMBEDDING_FORMATS``; by default it follows the file name (``.pt`` A1111, ``.bin``
    diffusers, ``.png`` A1111 picture) and is otherwise ``safetensors``: SD1/SD2 as ``{"emb_params": [n, w]}``,
    SDXL as ``{"clip_l", "clip_g"}``, with the metadata in the header. A name without an embedding ending gets
    the format's. ``diffusers`` writes SDXL as a pair, ``name.ext`` (clip_l) and ``name_2.ext`` (clip_g).
    ``a1111-png`` draws a title card unless ``picture`` is given. Existing files are left untouched and an
    ``EmbeddingFileError`` raised, unless ``overwrite``.
    """
    path, format = _target(Path(path), format)
    if picture is not None and format != "a1111-png":
        raise UserError(f"A picture can only be stored with the a1111-png format, not {format}.")
    # The writer's identity goes into every file (a converted file says which version converted it).
    embedding = embedding.with_metadata(**{TOOL_FIELD: DISTRIBUTION, TOOL_VERSION_FIELD: tool_version()})
    try:
        files = _files(embedding, path, format, picture)
    except EmbeddingFileError:
        raise
    except EmbeddingError as err:
        raise EmbeddingFileError(f"Cannot write {path}: {err}") from err
    if not overwrite:
        for target, _ in files:
            if target.exists():
                raise _exists(target)
    for target, data in files:
        _write_atomically(target, data, overwrite)
    return [target for target, _ in files]
