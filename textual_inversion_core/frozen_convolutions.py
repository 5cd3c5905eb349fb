"""2-D convolutions of frozen weights as training a word needs them: a gradient to their input alone, and on a CPU
in float32 the faster of PyTorch's two kernels for each convolution's size.

Training differentiates through the UNet's convolutions only to reach the word's vectors, so what backward needs
of a convolution is its weight, never its input; PyTorch's own convolution saves the input all the same, for a
weight gradient nobody asks for. Here the input is not kept (one activation per convolution less in memory).

On a CPU PyTorch sends every float32 3x3 convolution to oneDNN. For the UNet's deep layers, many channels on a
small grid at batch 1, oneDNN's kernels run at a fraction of the machine's matmul rate, where unfolding the
picture and multiplying by the weight in the BLAS (PyTorch's own "slow" convolution) runs near it; on large grids,
and on small ones in large batches, oneDNN is the faster. ``bench/step.py`` times the step.
"""

from __future__ import annotations

import torch

# Output positions, over the whole batch, up to which the unfold-and-BLAS kernel beats oneDNN on a CPU in float32:
# one picture's 16x16 grid (the SD UNet's two deepest levels at 256 px, its deepest at 512 px). oneDNN is the
# faster on larger grids, and on small grids in large batches (a small UNet trained at batch 32, say).
BLAS_POSITIONS_LIMIT = 16 * 16


def convolve(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding, dilation,
             groups: int) -> torch.Tensor:
    """``torch.nn.functional.conv2d`` for a weight that is not trained: the same result, through the kernel this
    module chooses, and with a backward pass that computes the input's gradient from the weight alone."""
    if weight.requires_grad or (bias is not None and bias.requires_grad) or isinstance(padding, str):
        return torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)
    if (dtype := _autocast_dtype(input.device.type)) is not None:
        # What autocast would do to the convolution, done here, so the kernel is chosen for the dtype it really
        # computes in and backward keeps the weight it was computed with (the BLAS kernel is not one autocast
        # casts for: it would run in float32).
        input, weight = input.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    geometry = (_pair(stride), _pair(padding), _pair(dilation), groups)
    if input.requires_grad and torch.is_grad_enabled():
        return _FrozenWeightConvolution.apply(input, weight, bias, geometry)
    return _forward(input, weight, bias, geometry)


def route_convolutions(module: torch.nn.Module):
    """Route every zero-padded ``Conv2d`` of ``module`` through ``convolve``; returns what undoes it.

    Both diffusers' and ComfyUI's convolution layers call their ``_conv_forward`` with the weight they use (ComfyUI's
    after casting it), so that one method, replaced per layer, is the whole of the change.
    """
    routed = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.padding_mode == "zeros"
              and "_conv_forward" not in vars(m)]
    for layer in routed:
        layer._conv_forward = _routed_conv_forward(layer)

    def restore() -> None:
        for layer in routed:
            vars(layer).pop("_conv_forward", None)

    return restore


def _routed_conv_forward(layer: torch.nn.Conv2d):
    def conv_forward(input, weight, bias):
        return convolve(input, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)

    return conv_forward


class _FrozenWeightConvolution(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, geometry):
        ctx.save_for_backward(weight)
        ctx.geometry = geometry
        ctx.input_shape = input.shape
        ctx.channels_last = input.dim() == 4 and not input.is_contiguous() and \
            input.is_contiguous(memory_format=torch.channels_last)
        return _forward(input, weight, bias, geometry)

    @staticmethod
    def backward(ctx, grad_output):
        (weight,) = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.geometry
        # The input's gradient reads only the input's shape (and layout), so an unfilled tensor stands in for it.
        shape = torch.empty(ctx.input_shape, dtype=grad_output.dtype, device=grad_output.device,
                            memory_format=torch.channels_last if ctx.channels_last else torch.contiguous_format)
        if _blas_kernel(shape, weight, ctx.geometry):
            grad_input = torch.ops.aten._slow_conv2d_backward.output_mask(
                grad_output.contiguous(), shape, weight.contiguous(), weight.shape[-2:], stride, padding,
                [True, False, False])[0]
        else:
            grad_input = torch.ops.aten.convolution_backward(
                grad_output, shape, weight, None, stride, padding, dilation, False, [0, 0], groups,
                [True, False, False])[0]
        return grad_input, None, None, None


def _forward(input, weight, bias, geometry):
    stride, padding, dilation, groups = geometry
    if _blas_kernel(input, weight, geometry):
        return torch.ops.aten._slow_conv2d_forward(input.contiguous(), weight.contiguous(), weight.shape[-2:], bias,
                                                   stride, padding)
    return torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)


def _blas_kernel(input: torch.Tensor, weight: torch.Tensor, geometry) -> bool:
    """Whether the unfold-and-BLAS kernel is the faster for this convolution (a CPU's float32, few output
    positions)."""
    stride, padding, dilation, groups = geometry
    if input.device.type != "cpu" or input.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if input.dim() != 4 or groups != 1 or dilation != (1, 1):
        return False
    height, width = ((size + 2 * pad - kernel) // step + 1
                     for size, pad, kernel, step in zip(input.shape[-2:], padding, weight.shape[-2:], stride))
    return input.shape[0] * height * width <= BLAS_POSITIONS_LIMIT


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The half dtype autocast computes convolutions in on this device type now, or None."""
    if device_type not in ("cpu", "cuda") or not torch.is_autocast_enabled(device_type):
        return None
    dtype = torch.get_autocast_dtype(device_type)
    return dtype if dtype in (torch.float16, torch.bfloat16) else None


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
