"""The example workflows as the tests run them: their API-form twins, scaled down to the test checkpoint."""

from __future__ import annotations

from pathlib import Path

from workflow_format import load, node_of

EXAMPLES = Path(__file__).resolve().parents[2] / "example_workflows"
API_TWINS = Path(__file__).resolve().parent / "workflows"
CHECKPOINT = "tiny-sd1.safetensors"
CONCEPT_FOLDER = "my-cat"
TRAINING_SIZE = 64  # pixels: an 8x8 latent keeps every step and sample short on a CPU


def example_prompt(name: str) -> dict:
    """The API twin of example workflow ``name``, on the test checkpoint, at 64 px, sampling one step."""
    prompt = load(API_TWINS / f"{name}.api.json")
    node_of(prompt, "CheckpointLoaderSimple")["inputs"]["ckpt_name"] = CHECKPOINT
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "TextualInversionLoadConceptImages":
            inputs["resolution"] = TRAINING_SIZE
        elif node["class_type"] == "EmptyLatentImage":
            inputs["width"] = inputs["height"] = TRAINING_SIZE
        elif node["class_type"] == "KSampler":
            inputs["steps"] = 1
    return prompt
