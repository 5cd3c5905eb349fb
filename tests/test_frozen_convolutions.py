"""Convolutions of frozen weights: the same outputs and input gradients as PyTorch's own, without keeping the input
for a weight gradient, through the BLAS kernel on a CPU's small float32 grids, and back to PyTorch's own when the
weight trains or the routing is undone."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from textual_inversion_core.frozen_convolutions import BLAS_POSITIONS_LIMIT, route_convolutions


class AtenCalls(TorchDispatchMode):
    """The ATen operators a block of code runs, by name."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.name())
        return func(*args, **(kwargs or {}))


def frozen_layer(in_channels, out_channels, **geometry):
    torch.manual_seed(0)
    return torch.nn.Conv2d(in_channels, out_channels, **geometry).requires_grad_(False)


def output_and_input_gradient(layer, picture):
    picture = picture.detach().requires_grad_(True)
    output = layer(picture)
    (gradient,) = torch.autograd.grad(output, picture, torch.linspace(-1, 1, output.numel()).view_as(output))
    return output.detach(), gradient


GEOMETRIES = {
    "3x3, small grid": (dict(in_channels=16, out_channels=24, kernel_size=3, padding=1), 12),
    "3x3, large grid": (dict(in_channels=8, out_channels=8, kernel_size=3, padding=1), 20),
    "3x3, stride 2": (dict(in_channels=8, out_channels=16, kernel_size=3, stride=2, padding=1), 15),
    "1x1, no bias": (dict(in_channels=8, out_channels=4, kernel_size=1, bias=False), 9),
    "grouped": (dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=2), 10),
    "dilated": (dict(in_channels=4, out_channels=4, kernel_size=3, padding=2, dilation=2), 10),
}


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=list(GEOMETRIES))
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels-last"])
def test_a_routed_layer_gives_pytorchs_outputs_and_input_gradients(geometry, channels_last):
    # Given a frozen convolution and a batch of two pictures
    shape, side = GEOMETRIES[geometry]
    layer = frozen_layer(**shape)
    picture = torch.randn(2, shape["in_channels"], side, side)
    if channels_last:
        picture = picture.to(memory_format=torch.channels_last)
    expected = output_and_input_gradient(layer, picture)

    # When the layer is routed through convolve
    route_convolutions(layer)
    routed = output_and_input_gradient(layer, picture)

    # Then the output and the input's gradient are PyTorch's own, to float32 rounding
    for got, want in zip(routed, expected):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_routed_layer_keeps_its_weight_for_backward_but_not_its_input():
    # Given a frozen convolution, plain and routed
    layer = frozen_layer(8, 8, kernel_size=3, padding=1)
    picture = torch.randn(1, 8, 10, 10, requires_grad=True)

    def saved_shapes():
        shapes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(tuple(t.shape)) or t, lambda t: t):
            layer(picture)
        return shapes

    plain = saved_shapes()
    route_convolutions(layer)

    # When each runs forward with a picture that needs a gradient, then the plain one keeps the picture for its
    # backward pass and the routed one keeps only the weight
    assert (1, 8, 10, 10) in plain
    assert saved_shapes() == [(8, 8, 3, 3)]


def test_on_a_cpu_few_float32_output_positions_go_to_the_blas_kernel_and_more_to_pytorchs_choice():
    # Given a routed frozen convolution
    layer = frozen_layer(8, 8, kernel_size=3, padding=1)
    route_convolutions(layer)
    small = int(BLAS_POSITIONS_LIMIT ** 0.5)

    def kernels(side, dtype=torch.float32, batch=1):
        picture = torch.randn(batch, 8, side, side, dtype=dtype, requires_grad=True)
        layer.to(dtype)
        with AtenCalls() as calls:
            layer(picture).sum().backward()
        return [name for name in calls.names if "conv" in name]

    # When it runs on grids at and above the limit, in batches, and in bfloat16, then each goes where it is faster
    assert kernels(small) == ["aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward.output_mask"]
    assert kernels(small + 1) == ["aten::convolution", "aten::convolution_backward"]
    assert kernels(small // 2, batch=4) == ["aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward.output_mask"]
    assert kernels(small, batch=2) == ["aten::convolution", "aten::convolution_backward"]
    assert kernels(small, torch.bfloat16) == ["aten::convolution", "aten::convolution_backward"]


def test_a_trained_weight_and_an_undone_routing_get_pytorchs_own_convolution():
    # Given a routed convolution
    layer = frozen_layer(4, 4, kernel_size=3, padding=1)
    restore = route_convolutions(layer)
    picture = torch.randn(1, 4, 6, 6)

    # When its weight is made trainable, then it gets its gradient as PyTorch's own convolution gives it
    layer.requires_grad_(True)
    layer(picture).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0

    # When the routing is undone, then the layer's forward is its class's again
    restore()
    assert "_conv_forward" not in vars(layer)
    with AtenCalls() as calls:
        layer(picture)
    assert "aten::convolution" in calls.names


def test_under_autocast_a_routed_layer_computes_in_autocasts_dtype_bit_for_bit_as_pytorchs_own():
    # Given a frozen convolution on a grid small enough for the BLAS kernel in float32, and its unrouted twin
    routed, plain = frozen_layer(16, 24, kernel_size=3, padding=1), frozen_layer(16, 24, kernel_size=3, padding=1)
    route_convolutions(routed)
    picture = torch.randn(1, 16, 8, 8)
    # When each runs forward and backward under CPU autocast to bfloat16
    results = []
    for layer in (routed, plain):
        with AtenCalls() as calls, torch.autocast("cpu", torch.bfloat16):
            output, gradient = output_and_input_gradient(layer, picture)
        results.append((output, gradient, [name for name in calls.names if "conv" in name]))
    (output, gradient, kernels), (expected_output, expected_gradient, _) = results
    # Then the routed one computes in bfloat16, as autocast does (not in float32 through the BLAS kernel, which
    # autocast does not cast for), to the same bits, and hands back a float32 gradient for its float32 input
    assert "aten::_slow_conv2d_forward" not in kernels
    assert output.dtype == torch.bfloat16 and torch.equal(output, expected_output)
    assert gradient.dtype == torch.float32 and torch.equal(gradient, expected_gradient)
