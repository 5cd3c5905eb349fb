"""Train a word through the ComfyUI host on a small SD1.x MODEL with and without ``compile``; prints a JSON
report.

Run as ``python compile_check.py COMFYUI_PATH REPOSITORY`` in ComfyUI's Python.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch._dynamo.utils import counters

from comfyui_start import start_comfyui

comfyui_path, repository = sys.argv[1], Path(sys.argv[2])
start_comfyui(comfyui_path, repository)
from extension_import import extension_module  # noqa: E402
from small_sd1 import THREE_STEPS, build_sd1, noise_pictures  # noqa: E402

comfy_host = extension_module(repository, "nodes.comfy_host")
training = extension_module(repository, "textual_inversion_core.training")
data = extension_module(repository, "textual_inversion_core.data")


def main() -> None:
    pictures = noise_pictures(data)
    config = training.TrainingConfig(**THREE_STEPS)
    runs = {}
    with torch.inference_mode():  # as ComfyUI runs every node
        model, clip, vae = build_sd1()
        network = model.model.diffusion_model
        for compile in (False, True):
            torch._dynamo.reset()
            counters.clear()
            with comfy_host.training_session(model, clip):
                frozen = comfy_host.frozen_model(model, clip, vae, compile)
                result = training.train_embedding(frozen, pictures, config)
            runs[compile] = {"losses": result.losses, "graphs": counters["stats"]["unique_graphs"],
                             "graph_breaks": sum(counters["graph_break"].values())}
    print(json.dumps({
        "plain": runs[False], "compiled": runs[True], "compute_dtype": str(frozen.autocast_dtype or torch.float32),
        "model_network_unchanged": model.model.diffusion_model is network
        and not isinstance(network, torch._dynamo.eval_frame.OptimizedModule),
    }))


main()
