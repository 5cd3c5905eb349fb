"""Score pictures with Evaluate Embedding on a small CLIP vision model built the way ComfyUI builds its own
(``comfy.clip_vision.ClipVisionModel`` from a config, weights loaded as Load CLIP Vision loads them), and with the
command line's extractor on the same weights saved as a transformers folder; prints a JSON report.

Run as ``python evaluate_check.py COMFYUI_PATH REPOSITORY`` in ComfyUI's Python.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from comfyui_start import start_comfyui

comfyui_path, repository = sys.argv[1], Path(sys.argv[2])
start_comfyui(comfyui_path, repository)
import comfy.clip_vision  # noqa: E402
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection  # noqa: E402

from extension_import import extension_module  # noqa: E402

evaluate_node = extension_module(repository, "nodes.evaluate_embedding")
clip_vision_module = extension_module(repository, "textual_inversion_core.clip_vision")
evaluation = extension_module(repository, "textual_inversion_core.evaluation")

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
             patch_size=8, projection_dim=16, hidden_act="quick_gelu", layer_norm_eps=1e-5)


def pictures(seed: int, count: int = 4) -> torch.Tensor:
    """ComfyUI IMAGE batches ([B, H, W, C]): smooth random colour fields."""
    small = torch.rand(count, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(small, size=(48, 64), mode="bilinear").movedim(1, -1)


def main() -> None:
    torch.manual_seed(0)
    reference = CLIPVisionModelWithProjection(CLIPVisionConfig(**SMALL)).eval()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "clip_vision_config_small.json"
        config.write_text(json.dumps({**SMALL, "model_type": "clip_vision_model", "num_channels": 3}))
        clip_vision = comfy.clip_vision.ClipVisionModel(str(config))
        missing, _ = clip_vision.load_sd(reference.state_dict())
        reference.save_pretrained(Path(folder) / "transformers")
        extract = clip_vision_module.load_clip_vision(Path(folder) / "transformers")

        concept, other = pictures(1), pictures(2)
        with torch.inference_mode():  # the node's own mode
            similarity, init_similarity, report = evaluate_node.EvaluateEmbedding.execute(
                clip_vision, concept, concept.flip(2), other).result
        command_line = evaluation.score_reconstruction(
            extract, concept.flip(2).movedim(-1, 1), other.movedim(-1, 1), concept.movedim(-1, 1))
    print(json.dumps({
        "missing_weights": list(missing),
        "similarity": similarity, "init_similarity": init_similarity, "report": report,
        "command_line_similarity": command_line.similarity,
        "command_line_init_similarity": command_line.init_similarity,
    }))


main()
