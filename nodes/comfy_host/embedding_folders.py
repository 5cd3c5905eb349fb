"""ComfyUI's embeddings folders: the files in them, a name's path, and saving a new file without overwriting, so
that ``embedding:<name>`` finds what the nodes save."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import folder_paths

from ...textual_inversion_core.embedding import Embedding
from ...textual_inversion_core.formats import READABLE_SUFFIXES, EmbeddingFileError, save_embedding

# ComfyUI resolves "embedding:name" to the first of name.safetensors, name.pt, name.bin; a new file must not
# shadow (or be shadowed by) an existing one with the same stem.
_COMFY_EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")
# Characters Windows forbids in file names, and white space, which ends a name in "embedding:name".
_UNSAFE_NAME_CHARACTERS = re.compile(r'[<>:"|?*\x00-\x1f\s]+')


def embedding_file_names() -> list[str]:
    """Every readable embedding file in ComfyUI's embeddings folders, relative to its folder, '/'-separated."""
    names = set()
    for root in folder_paths.get_folder_paths("embeddings"):
        for directory, subdirectories, files in os.walk(root, followlinks=True):
            subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
            for name in files:
                if not name.startswith(".") and name.lower().endswith(READABLE_SUFFIXES):
                    names.add(Path(directory, name).relative_to(root).as_posix())
    return sorted(names, key=str.lower)


def embedding_path(name: str) -> Path:
    for root in folder_paths.get_folder_paths("embeddings"):
        root_path = Path(root).resolve()
        path = (root_path / name).resolve()
        if path.is_relative_to(root_path) and path.is_file():
            return path
    raise EmbeddingFileError(
        f"No embedding file {name!r} in ComfyUI's embeddings folders "
        f"({', '.join(folder_paths.get_folder_paths('embeddings'))})."
    )


def file_stem(text: str) -> str:
    """A file-name-safe form of a token or prefix: '<my-cat>' becomes 'my-cat'."""
    parts = [_UNSAFE_NAME_CHARACTERS.sub("_", part).strip("._") for part in re.split(r"[\\/]", text)]
    return "/".join(part for part in parts if part and part != "..")


def save_new_embedding_file(embedding: Embedding, prefix: str) -> Path:
    """Write ``embedding`` as ``prefix.safetensors`` in the first embeddings folder, or ``prefix_2`` and so on
    when that name is taken (by any file ``embedding:prefix`` would find); never overwrites. Returns the path."""
    root = Path(folder_paths.get_folder_paths("embeddings")[0])
    stem = file_stem(prefix) or file_stem(embedding.token) or "embedding"
    return save_under_new_name(root, stem, _COMFY_EMBEDDING_SUFFIXES,
                               lambda path: save_embedding(embedding, path)[0])


def save_under_new_name(root: Path, stem: str, taken_by: tuple[str, ...], write: Callable[[Path], Path]) -> Path:
    """``write`` to ``root/stem.safetensors``, or ``stem_2`` and so on while a file of that stem with any of the
    endings ``taken_by`` exists; ``write`` must refuse to overwrite (``EmbeddingFileError``)."""
    for counter in range(1, 100_000):
        candidate = root / (stem if counter == 1 else f"{stem}_{counter}")
        if any(candidate.with_name(candidate.name + s).exists() for s in taken_by):
            continue
        try:
            return write(candidate.with_name(candidate.name + ".safetensors"))
        except EmbeddingFileError:
            if not candidate.with_name(candidate.name + ".safetensors").exists():
                raise
            # Another save took this name between the check and the write; try the next.
    raise EmbeddingFileError(f"Too many files named {stem!r} in {root}; choose another filename_prefix.")


def display_path(path: Path, kind: str = "embeddings") -> str:
    """``<kind>/<name>`` for the file's place in its folder of that kind (``embeddings``, ``loras``)."""
    for root in folder_paths.get_folder_paths(kind):
        try:
            return f"{kind}/" + path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


def file_fingerprint(find: Callable[[str], Path], name: str, *settings) -> str | float:
    """What a loader node's ``fingerprint_inputs`` returns: it runs again when the file named ``name`` changes
    on disk, not only when its inputs do."""
    try:
        stat = find(name).stat()
    except (EmbeddingFileError, OSError):
        return float("nan")  # never equal to itself: let execute() report the problem
    return ":".join(str(part) for part in (stat.st_size, stat.st_mtime_ns, *settings))
