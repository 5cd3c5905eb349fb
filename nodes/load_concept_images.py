"""Load Concept Images: the 3-5 pictures of a concept (and their captions) from a folder, at the training size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import folder_paths
import torch
from comfy_api.latest import io

from ..textual_inversion_core.data import CROP_MODES, ConceptDataError, list_concept_files, load_concept_folder


def concept_folder(folder: str) -> Path:
    """An absolute path as given; anything else relative to ComfyUI's input directory."""
    if not folder.strip():
        raise ConceptDataError(
            "Load Concept Images needs a folder: the name of a folder under ComfyUI's input directory "
            f"({folder_paths.get_input_directory()}) or an absolute path."
        )
    path = Path(folder.strip()).expanduser()
    if path.is_absolute():
        return path
    input_dir = Path(folder_paths.get_input_directory()).resolve()
    resolved = (input_dir / path).resolve()
    if not resolved.is_relative_to(input_dir):
        raise ConceptDataError(f"The folder {folder!r} lies outside ComfyUI's input directory {input_dir}.")
    if not resolved.is_dir():
        raise ConceptDataError(
            f"There is no folder {folder!r} in ComfyUI's input directory ({input_dir}); put the pictures in "
            f"{input_dir / path} or give an absolute path."
        )
    return resolved


class LoadConceptImages(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TextualInversionLoadConceptImages",
            display_name="Load Concept Images",
            category="textual inversion",
            description="The pictures of a concept in a folder, scaled to the training size, with the captions "
            "from .txt files beside them.",
            inputs=[
                io.String.Input(
                    "folder",
                    default="",
                    tooltip="A folder under ComfyUI's input directory (e.g. 'my-cat'), or an absolute path. "
                    "3-5 pictures; a caption for 'x.png' goes in 'x.txt'.",
                ),
                io.Int.Input(
                    "resolution",
                    default=512,
                    min=64,
                    max=4096,
                    step=64,
                    tooltip="The square training size: 512 for SD1.x, 768 for SD2.x, 1024 for SDXL.",
                ),
                io.Combo.Input(
                    "crop",
                    options=list(CROP_MODES),
                    default="center",
                    tooltip="center: keep the aspect ratio and crop the middle; none: stretch the whole picture.",
                ),
            ],
            outputs=[
                io.Image.Output("images", display_name="images"),
                io.String.Output(
                    "captions", display_name="captions", tooltip="One line per picture; empty if none has a caption."
                ),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, folder, resolution, crop):
        # Run again when pictures or captions in the folder change, not only when the inputs do.
        try:
            path = concept_folder(folder)
            files = [f for p in list_concept_files(path) for f in (p, p.with_suffix(".txt")) if f.is_file()]
        except (ConceptDataError, OSError):
            return float("nan")  # never equal to itself: let execute() report the problem
        digest = hashlib.sha256()
        for f in files:
            stat = f.stat()
            digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()

    @classmethod
    def execute(cls, folder, resolution, crop) -> io.NodeOutput:
        images = load_concept_folder(concept_folder(folder), resolution=resolution, crop=crop)
        batch = torch.stack([image.pixels.movedim(0, -1) for image in images])  # ComfyUI IMAGE: [B, H, W, C]
        captions = [image.caption for image in images]
        return io.NodeOutput(batch, "\n".join(captions) if any(captions) else "")
