"""Train a word on a small ComfyUI SD1.x model on the CPU, with and without half-precision weight copies; prints a
JSON report.

Run as ``python precision_check.py COMFYUI_PATH REPOSITORY`` in ComfyUI's Python. ComfyUI keeps the UNet in float32
on the CPU; where the CPU computes bfloat16 natively the host trains in it, with bfloat16 copies of the UNet's
weights standing in for ComfyUI's during its own forward passes only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from comfyui_start import start_comfyui

comfyui_path, repository = sys.argv[1], Path(sys.argv[2])
start_comfyui(comfyui_path, repository)
from extension_import import extension_module  # noqa: E402
from small_sd1 import THREE_STEPS, build_sd1, noise_pictures  # noqa: E402

comfy_host = extension_module(repository, "nodes.comfy_host")
trainer = extension_module(repository, "textual_inversion_core.training")
data = extension_module(repository, "textual_inversion_core.data")
precision = extension_module(repository, "textual_inversion_core.precision")


def main() -> None:
    pictures = noise_pictures(data)
    config = trainer.TrainingConfig(**THREE_STEPS)
    with torch.inference_mode():  # as ComfyUI runs every node
        model, clip, vae = build_sd1()
        unet = model.model.diffusion_model
        runs = {}
        for copies in (True, False):
            frozen = comfy_host.frozen_model(model, clip, vae)
            if not copies:
                frozen.denoiser._half_weights = None  # autocast casts ComfyUI's float32 weights at every step
            with comfy_host.training_session(model, clip):
                weights_before = {name: p for name, p in unet.named_parameters()}
                result = trainer.train_embedding(frozen, pictures, config)
                weights_after = {name: p for name, p in unet.named_parameters()}
            runs[copies] = result.losses
    report = {
        "native_bf16": precision.native_compute_dtype(torch.device("cpu")) == torch.bfloat16,
        "autocast_dtype": str(frozen.autocast_dtype),
        "weights_are_comfyuis_after_training": weights_before.keys() == weights_after.keys() and all(
            weights_after[name] is tensor and tensor.dtype == torch.float32 for name, tensor in weights_before.items()),
        "losses_with_copies": runs[True],
        "losses_with_autocast_casts": runs[False],
    }
    print(json.dumps(report))


main()
