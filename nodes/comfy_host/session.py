"""What lets gradients through ComfyUI's models for the duration of a training, and nothing after it.

Two things in ComfyUI stand in the way of gradients: weights loaded under ``torch.inference_mode()`` are
inference tensors, which autograd refuses to save, and ComfyUI's CLIP layers add their residuals in place into
a tensor a LayerNorm saved for its backward pass. And one thing would let too many through: weights that
require grad (a MODEL loaded outside a node, say), for which autograd would compute and keep a gradient of the
whole UNet and CLIP at every step.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import comfy.model_management
import torch

from ...textual_inversion_core.frozen_convolutions import route_convolutions


@contextlib.contextmanager
def training_session(model, clip) -> Iterator[None]:
    """Let gradients flow through ComfyUI's UNet and CLIP while the block runs, and tidy up after.

    Nodes run under ``torch.inference_mode()``; inside this block it is off and gradients are on. The models
    are loaded through ComfyUI's model management, their inference-tensor weights are swapped for ordinary
    tensors with the same values (one tensor at a time, so no second copy of the model exists), and each of the
    CLIP's LayerNorms saves a copy of its input, so the layers' in-place residual additions cannot invalidate
    what backward needs. Every weight is out of autograd for the block, so only the word's vectors get a
    gradient, and the UNet's convolutions go through the core's ``route_convolutions`` (no input kept for a
    weight gradient; on a CPU the faster kernel for each grid). The hooks and the routing are removed and the
    weights' own ``requires_grad`` flags restored on exit, whatever happens.
    """
    with torch.inference_mode(False), torch.enable_grad():
        comfy.model_management.load_models_gpu([model, clip.patcher])
        for module in (model.model, clip.cond_stage_model):
            make_weights_autograd_safe(module)
        flags = [(p, p.requires_grad) for m in (model.model, clip.cond_stage_model) for p in m.parameters()]
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        hooks = [
            m.register_forward_pre_hook(_copy_first_input)
            for m in clip.cond_stage_model.modules()
            if isinstance(m, torch.nn.LayerNorm)
        ]
        unroute_convolutions = route_convolutions(model.model)
        try:
            yield
        finally:
            unroute_convolutions()
            for hook in hooks:
                hook.remove()
            for parameter, flag in flags:
                parameter.requires_grad_(flag)
            comfy.model_management.soft_empty_cache()


def make_weights_autograd_safe(module: torch.nn.Module) -> None:
    """Replace inference-tensor weights by ordinary tensors with the same values, one tensor at a time.

    (Assigning ``.data`` is not enough: the tensor object would stay without the version counter autograd
    needs.)"""
    with torch.no_grad():
        for m in module.modules():
            for name, tensor in list(m._parameters.items()):
                if tensor is not None and tensor.is_inference():
                    m._parameters[name] = torch.nn.Parameter(tensor.clone(), requires_grad=False)
            for name, tensor in list(m._buffers.items()):
                if tensor is not None and tensor.is_inference():
                    m._buffers[name] = tensor.clone()


def _copy_first_input(module, args):
    return (args[0].clone(), *args[1:])
