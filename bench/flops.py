"""The FLOPs of one training step, by kind (convolutions, attention, the rest): what the floors divide by the
machine's rates."""

from __future__ import annotations

import torch

from training_run import INIT_TEXT, TOKEN


def cpu_flash_attention_flops(query, key, value, *args, out_val=None, **kwargs):
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value)


def cpu_flash_attention_backward_flops(grad_out, query, key, value, *args, out_val=None, **kwargs):
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out, query, key, value)


def slow_conv2d_flops(x_shape, w_shape, kernel_size, bias, stride, padding, *args, out_shape=None, **kwargs):
    from torch.utils.flop_counter import conv_flop_count

    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def slow_conv2d_backward_flops(grad_out_shape, x_shape, w_shape, kernel_size, stride, padding, output_mask,
                               *args, out_shape=None, **kwargs):
    """The input's and the weight's gradients each cost what the forward convolution does."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=False)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count_step_flops(trainer, frozen, size: int) -> dict:
    """FLOPs of one training step (batch 1) by kind: convolutions, and the rest (matmuls and attention), of which
    attention."""
    from torch.utils.flop_counter import FlopCounterMode

    device = frozen.device
    generator = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(2, 1, 4, size // 8, size // 8, generator=generator).to(device)
    vectors = {name: torch.nn.Parameter(v.to(device)) for name, v in trainer.initial_vectors(frozen, INIT_TEXT, 1).items()}
    # The CPU's flash attention kernels are missing from torch's FLOP formulas (they are the usual attention's),
    # and so is the backward of the BLAS convolution the core uses for small grids (its forward's formula there
    # expects another signature).
    aten = torch.ops.aten
    custom = {aten._slow_conv2d_forward: slow_conv2d_flops, aten._slow_conv2d_backward: slow_conv2d_backward_flops}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        custom[aten._scaled_dot_product_flash_attention_for_cpu] = cpu_flash_attention_flops
        custom[aten._scaled_dot_product_flash_attention_for_cpu_backward] = cpu_flash_attention_backward_flops
    with FlopCounterMode(display=False, custom_mapping=custom) as counter:
        loss = trainer.batch_loss(frozen, latents, [f"a photo of a {TOKEN}"], TOKEN, vectors,
                                  torch.tensor([500], device=device), noise)
        loss.backward()
    by_op = counter.get_flop_counts()["Global"]
    conv = sum(n for op, n in by_op.items() if "conv" in str(op))
    attention = sum(n for op, n in by_op.items() if "attention" in str(op))
    total = sum(by_op.values())
    return {"total": total, "conv": conv, "attention": attention, "other": total - conv}
