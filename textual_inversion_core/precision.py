"""Where the frozen model runs and in which dtype, and the loss scaling float16 needs.

Textual inversion spends all its time in the frozen UNet's forward and input-gradient passes, so the fastest
dtype the hardware computes natively is the default: bfloat16 on GPUs that have it and on CPUs with AVX512-BF16
or AMX (about twice float32's rate there), float16 with loss scaling on older GPUs with fast float16. Elsewhere
half precision is emulated and slower than float32, which then stays. Only the frozen weights and activations take
this dtype; the word's vectors, their gradients and the optimiser always stay float32.
"""

from __future__ import annotations

import contextlib

import torch

from .errors import UserError

HALF_DTYPES = (torch.float16, torch.bfloat16)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's MPS, then the CPU; anything else is taken as a torch device."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype in DTYPES:
        return DTYPES[dtype]
    raise UserError(f"Unsupported dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")


def weights_dtype(requested: str, device) -> str:
    """``auto``: the fastest dtype the device computes natively (bfloat16 on recent GPUs and on CPUs with
    AVX512-BF16/AMX, float16 on older GPUs), float32 where half precision would be emulated."""
    if requested != "auto":
        return requested
    return str(native_compute_dtype(device)).removeprefix("torch.")


def cpu_computes_bf16_natively() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX, where oneDNN runs bfloat16 matmuls and convolutions in hardware.

    (``torch.ops.mkldnn._is_mkldnn_bf16_supported`` also says yes on plain AVX-512, where bfloat16 is emulated
    and slower than float32.)
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return torch.backends.mkldnn.is_available() and any(getattr(torch.cpu, c, lambda: False)() for c in checks)


def native_compute_dtype(device: torch.device) -> torch.dtype:
    """The fastest dtype ``device`` computes a frozen diffusion model in without emulation."""
    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
        # Volta and later, and the P100, have fast float16; other Pascal and older GPUs run it at a crawl.
        capability = torch.cuda.get_device_capability(device)
        return torch.float16 if capability >= (7, 0) or capability == (6, 0) else torch.float32
    if device.type == "cpu" and cpu_computes_bf16_natively():
        return torch.bfloat16
    return torch.float32


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A tensor drawn on the CPU (a step's noise and timesteps) on ``device``; to a CUDA device from pinned
    memory and without waiting, so the host goes on queueing the step's work instead of waiting for the GPU to
    finish the last one."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def autocast_dtype_for(weights_dtype: torch.dtype) -> torch.dtype | None:
    """Half-precision weights compute under autocast in their own dtype (which keeps norms and softmax in
    float32 where autocast does so, and lets float32 vectors meet half weights); float32 weights need none."""
    return weights_dtype if weights_dtype in HALF_DTYPES else None


def loss_scaler(device: torch.device, autocast_dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """float16 gradients underflow without loss scaling; bfloat16 has float32's range and needs none, so its
    scaler is disabled (and then passes the loss and the optimiser step through unchanged)."""
    return torch.amp.GradScaler(torch.device(device).type, enabled=autocast_dtype == torch.float16)


def autocast(device: torch.device, dtype: torch.dtype | None, for_vae: bool = False):
    """The forward passes' autocast for a model computing in ``dtype`` (None: its weights' own dtype).

    Stable Diffusion's VAEs overflow in float16, so hosts keep them in float32, which float16 autocast would
    undo; bfloat16 has float32's range.
    """
    if dtype is None or (for_vae and dtype == torch.float16):
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
