"""Render the template thumbnails, ``example_workflows/<name>.jpg``, from real runs of the examples in a real ComfyUI.

Run ``python3 tests/comfyui/render_thumbnails.py [NAME ...]`` with ``COMFYUI_PATH`` and ``COMFYUI_PYTHON`` set as
for the tests; given names (e.g. ``pivotal_lora``), only those examples' thumbnails are rendered and written, with
the runs they build on. It starts ComfyUI as the tests do, on their small random-weight SD1.x checkpoint and three
noise pictures, runs each example's API twin (training a few steps at the tests' size, sampling at THUMBNAIL_SIZE
with the example's own sampler settings), and writes the picture the run made as the example's thumbnail. The model
has random weights, so its pictures are what such a model makes, not cats; the training examples' thumbnails are
their loss plots (pivotal_lora's: its LoRA stage's), the one picture of such a run that shows what the example does.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from comfy_server import ComfyServer
from examples import CHECKPOINT, CONCEPT_FOLDER, EXAMPLES, example_prompt, write_concept_pictures
from workflow_format import node_of

HERE = Path(__file__).resolve().parent
THUMBNAIL_SIZE = 256  # pixels, square, as the template browser shows them
TRAINING_STEPS = 20  # enough for the loss plot to show a curve
# several_words uses a second word; only its file matters, so it trains for a moment.
SECOND_WORD = {"token": "<my-style>", "init_text": "painting", "template": "style", "steps": 2}
# pivotal_lora's word only has to exist for its LoRA stage, whose loss plot is the thumbnail.
PIVOTAL_WORD_STEPS = 2
# In the order they build on each other.
RENDERED = ("train_embedding", "use_embedding", "several_words", "pivotal_lora")


def render_all(server: ComfyServer, names: tuple[str, ...] = RENDERED) -> dict[str, Image.Image]:
    """The thumbnails of the examples ``names``: the trainings' loss plots, the other examples' picture."""
    thumbnails = {}
    if {"train_embedding", "use_embedding", "several_words"} & set(names):  # the latter two use the word it saves
        training = example_prompt("train_embedding", THUMBNAIL_SIZE, sampler_steps=None)
        node_of(training, "TextualInversionTrainEmbedding")["inputs"].update(steps=TRAINING_STEPS, preview_every=0)
        thumbnails["train_embedding"] = picture_of(server, training, "PreviewImage")
    if "several_words" in names:
        second = example_prompt("train_embedding", sampler_steps=1)
        node_of(second, "TextualInversionTrainEmbedding")["inputs"].update(preview_every=0, **SECOND_WORD)
        server.run(second)
    for name in ("use_embedding", "several_words"):
        if name in names:
            thumbnails[name] = picture_of(server, example_prompt(name, THUMBNAIL_SIZE, sampler_steps=None),
                                          "SaveImage")
    if "pivotal_lora" in names:
        pivotal = example_prompt("pivotal_lora", sampler_steps=1)
        node_of(pivotal, "TextualInversionTrainEmbedding")["inputs"].update(steps=PIVOTAL_WORD_STEPS, preview_every=0)
        node_of(pivotal, "TextualInversionTrainPivotalLora")["inputs"].update(steps=TRAINING_STEPS, preview_every=0)
        thumbnails["pivotal_lora"] = picture_of(server, pivotal, "PreviewImage")
    return {name: picture for name, picture in thumbnails.items() if name in names}


def picture_of(server: ComfyServer, prompt: dict, class_type: str) -> Image.Image:
    """Run ``prompt``; the one picture its ``class_type`` node showed."""
    node_id = next(key for key, node in prompt.items() if node["class_type"] == class_type)
    [picture] = server.pictures(server.run(prompt), node_id)
    return Image.open(io.BytesIO(picture)).convert("RGB")


def thumbnail(picture: Image.Image) -> Image.Image:
    """The picture whole, on a square: the template browser crops other shapes to one."""
    background = picture.getpixel((0, 0))
    return ImageOps.pad(picture, (THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS, color=background)


def main() -> None:
    comfyui_path, python = os.environ.get("COMFYUI_PATH"), os.environ.get("COMFYUI_PYTHON")
    if not comfyui_path or not python:
        sys.exit("Set COMFYUI_PATH (the ComfyUI folder) and COMFYUI_PYTHON (a Python with its requirements and "
                 "this project's), as for tests/comfyui.")
    unrendered = sorted({path.stem for path in EXAMPLES.glob("*.json")} - set(RENDERED))
    if unrendered:
        sys.exit(f"No thumbnail would be rendered for {', '.join(unrendered)}: add it to RENDERED and render_all "
                 f"in {__file__}.")
    names = tuple(sys.argv[1:]) or RENDERED
    unknown = sorted(set(names) - set(RENDERED))
    if unknown:
        sys.exit(f"No example {', '.join(unknown)}; the examples are {', '.join(RENDERED)}.")
    with tempfile.TemporaryDirectory(prefix="thumbnails-") as work:
        checkpoint = Path(work) / CHECKPOINT
        subprocess.run([python, str(HERE / "make_checkpoint.py"), comfyui_path, str(checkpoint)], check=True)
        server = ComfyServer(Path(comfyui_path), python, Path(work) / "comfyui")
        try:
            (server.checkpoints / CHECKPOINT).symlink_to(checkpoint)
            write_concept_pictures(server.input / CONCEPT_FOLDER)
            server.wait_ready()
            thumbnails = render_all(server, names)
        finally:
            server.stop()
    for name, picture in thumbnails.items():
        path = EXAMPLES / f"{name}.jpg"
        thumbnail(picture).save(path, quality=85, optimize=True)
        print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
