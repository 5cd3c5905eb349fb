"""``torch.compile`` for the denoiser's training passes: opt-in, because compiling costs minutes once, before the
first step, which only faster steps over a long run could earn back, and on a CPU an SD-size UNet's compiled
steps were slower still (``bench/step.py --runs default compiled`` times both).

Every training pass has one shape (the batch, the resolution and the prompt length are fixed for a run), so the
network is compiled for static shapes, once; what differs between steps are values (latents, timesteps, the
word's vectors), which compiled code takes as inputs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import torch

from .errors import ConfigError


def compiled(module: torch.nn.Module):
    """``module`` compiled by TorchInductor, called as the module is; checks first that this machine can build
    what Inductor generates, so a missing compiler is named now rather than deep inside the first step."""
    device = next(module.parameters()).device
    check_compiler(device)
    return torch.compile(module, dynamic=False)


def check_compiler(device: torch.device) -> None:
    if device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            raise ConfigError("compile on a CUDA GPU needs Triton (pip install triton); or train without compile.")
        return
    if device.type == "cpu":
        candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++"]
        if not any(shutil.which(name) for name in candidates):
            raise ConfigError(
                f"compile on the CPU needs a C++ compiler for the code TorchInductor writes ({' or '.join(candidates)} "
                "on PATH, or CXX naming one): install one (e.g. apt install g++), or train without compile."
            )
        return
    raise ConfigError(f"compile is supported on CPUs and CUDA GPUs, not on {device.type}; train without compile.")
