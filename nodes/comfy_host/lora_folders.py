"""ComfyUI's loras folders: the files in them, a name's path, and saving a new pivotal LoRA without overwriting."""

from __future__ import annotations

from pathlib import Path

import folder_paths

from ...textual_inversion_core.formats import EmbeddingFileError
from ...textual_inversion_core.formats.pivotal_lora import save_pivotal_lora
from ...textual_inversion_core.lora import PivotalLora
from .embedding_folders import display_path, file_stem, save_under_new_name


def lora_file_names() -> list[str]:
    return [name for name in folder_paths.get_filename_list("loras") if name.lower().endswith(".safetensors")]


def lora_path(name: str) -> Path:
    path = folder_paths.get_full_path("loras", name)
    if path is None:
        raise EmbeddingFileError(f"No LoRA file {name!r} in ComfyUI's loras folders "
                                 f"({', '.join(folder_paths.get_folder_paths('loras'))}).")
    return Path(path)


def save_new_lora_file(lora: PivotalLora, prefix: str) -> Path:
    """Write ``lora`` as ``prefix.safetensors`` in the first loras folder, numbered when the name is taken."""
    root = Path(folder_paths.get_folder_paths("loras")[0])
    stem = file_stem(prefix) or file_stem(lora.token) or "pivotal_lora"
    return save_under_new_name(root, stem, (".safetensors", ".pt", ".ckpt"), lambda path: save_pivotal_lora(lora, path))


def display_lora_path(path: Path) -> str:
    return display_path(path, "loras")
