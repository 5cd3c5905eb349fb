"""The example workflows as the tests run them: their API-form twins, scaled down to the test checkpoint, and the
concept pictures they train on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from workflow_format import load, node_of

EXAMPLES = Path(__file__).resolve().parents[2] / "example_workflows"
API_TWINS = Path(__file__).resolve().parent / "workflows"
CHECKPOINT = "tiny-sd1.safetensors"
CONCEPT_FOLDER = "my-cat"
TRAINING_SIZE = 64  # pixels: an 8x8 latent keeps every step and sample short on a CPU


def example_prompt(name: str, picture_size: int = TRAINING_SIZE, sampler_steps: int | None = 1) -> dict:
    """The API twin of example workflow ``name`` on the test checkpoint, training at TRAINING_SIZE, making its
    pictures at ``picture_size`` with ``sampler_steps`` steps (None keeps the example's)."""
    prompt = load(API_TWINS / f"{name}.api.json")
    node_of(prompt, "CheckpointLoaderSimple")["inputs"]["ckpt_name"] = CHECKPOINT
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "TextualInversionLoadConceptImages":
            inputs["resolution"] = TRAINING_SIZE
        elif node["class_type"] == "EmptyLatentImage":
            inputs["width"] = inputs["height"] = picture_size
        elif node["class_type"] == "KSampler" and sampler_steps is not None:
            inputs["steps"] = sampler_steps
    return prompt


def write_concept_pictures(folder: Path) -> None:
    """Three odd-sized noise pictures, one with a caption beside it."""
    folder.mkdir(parents=True)
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 256, size=(90, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"picture{i}.png")
    (folder / "picture0.txt").write_text("a cat on a sofa\n", encoding="utf-8")
