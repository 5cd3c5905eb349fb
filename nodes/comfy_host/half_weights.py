"""Half-precision copies of a float32 module's weights, standing in for them only while the host computes."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


class HalfPrecisionWeights:
    """Copies of a module's linear and convolution weights in a half-precision ``dtype``, swapped in by reference
    for a block and out again, so that outside it ComfyUI sees its own tensors (not rounded copies). Norm layers
    keep theirs: they meet float32 inputs outside autocast."""

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype):
        self._dtype = dtype
        self._slots = [
            [m, name, None, None]
            for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd))
            for name, tensor in m._parameters.items() if tensor is not None and tensor.is_floating_point()
        ]

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        for slot in self._slots:
            module, name, original, _ = slot
            current = module._parameters[name]
            if current is not original:  # first use, or ComfyUI replaced the weight (a patch): copy it again
                with torch.no_grad():
                    slot[2:] = current, torch.nn.Parameter(current.to(self._dtype), requires_grad=False)
            module._parameters[name] = slot[3]
        try:
            yield
        finally:
            for module, name, original, _ in self._slots:
                module._parameters[name] = original
