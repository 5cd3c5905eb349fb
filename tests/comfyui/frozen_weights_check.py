"""Train a word through the ComfyUI host on a MODEL and CLIP whose weights require grad (loaded outside a node,
as a script may load them); prints a JSON report.

Run as ``python frozen_weights_check.py COMFYUI_PATH REPOSITORY`` in ComfyUI's Python.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from comfyui_start import start_comfyui

comfyui_path, repository = sys.argv[1], Path(sys.argv[2])
start_comfyui(comfyui_path, repository)
from extension_import import extension_module  # noqa: E402
from small_sd1 import THREE_STEPS, build_sd1, noise_pictures  # noqa: E402

comfy_host = extension_module(repository, "nodes.comfy_host")
training = extension_module(repository, "textual_inversion_core.training")
data = extension_module(repository, "textual_inversion_core.data")


class WeightWatch(training.TrainingCallbacks):
    """After each step: which weights were in autograd during it, how many of the UNet's convolutions went
    through the core's routing, and how long it took."""

    def __init__(self, weights, convolutions):
        self.weights, self.in_autograd, self.seconds, self.last = weights, [], [], time.perf_counter()
        self.convolutions, self.routed = convolutions, []

    def on_step(self, report):
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now
        self.in_autograd.append(sum(p.requires_grad for p in self.weights))
        self.routed.append(routed(self.convolutions))


def routed(convolutions) -> int:
    return sum("_conv_forward" in vars(layer) for layer in convolutions)


def main() -> None:
    pictures = noise_pictures(data)
    config = training.TrainingConfig(**THREE_STEPS)
    model, clip, vae = build_sd1()  # outside inference mode: ordinary tensors
    weights = [p for m in (model.model, clip.cond_stage_model) for p in m.parameters()]
    for weight in weights:
        weight.requires_grad_(True)
    convolutions = [m for m in model.model.modules() if isinstance(m, torch.nn.Conv2d)]
    watch = WeightWatch(weights, convolutions)
    with torch.inference_mode():  # the node's own mode
        frozen = comfy_host.frozen_model(model, clip, vae)
        with comfy_host.training_session(model, clip):
            result = training.train_embedding(frozen, pictures, config, watch)
    print(json.dumps({
        "weights": len(weights),
        "steps": result.steps_done,
        "weights_in_autograd_during_steps": watch.in_autograd,
        "weights_with_a_gradient": sum(p.grad is not None for p in weights),
        "weights_requiring_grad_after": sum(p.requires_grad for p in weights),
        "seconds_per_step": watch.seconds,
        "convolutions": len(convolutions),
        "convolutions_routed_during_steps": watch.routed,
        "convolutions_routed_after": routed(convolutions),
    }))


main()
