"""The machine the benchmark runs on: what it is, and the rates its matmuls, convolutions and attention reach,
the rates the floors are drawn from."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from measure import dtype_name, synchronize


def best_seconds(fn, device: torch.device, repeats: int = 5, budget: float = 2.0) -> float:
    """The fastest of several timed calls: what the hardware can do, with the least of other processes' noise."""
    fn()
    synchronize(device)
    times = []
    while len(times) < repeats or (sum(times) < budget and len(times) < 50):
        started = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return min(times)


def measure_rates(device: torch.device, dtypes: list[torch.dtype]) -> dict:
    """GFLOP/s of a large matmul and of a UNet-sized 3x3 convolution in each of ``dtypes``."""
    big = device.type == "cuda"
    m, k = (8192, 8192) if big else (4096, 2048)
    batch, channels, side = (8, 640, 64) if big else (1, 320, 64)
    conv_flops = 2 * batch * channels * channels * 9 * side * side
    rates = {}
    for name, dtype in ((dtype_name(dtype), dtype) for dtype in dtypes):
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, k, device=device, dtype=dtype)
        x = torch.randn(batch, channels, side, side, device=device, dtype=dtype)
        w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype)
        with torch.no_grad():
            rates[name] = {
                "matmul": 2 * m * k * k / best_seconds(lambda: a @ b, device) / 1e9,
                "conv": conv_flops / best_seconds(lambda: torch.nn.functional.conv2d(x, w, padding=1), device) / 1e9,
            }
            if device.type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available():
                # PyTorch sends float32 matmuls to MKL; oneDNN (which runs every CPU convolution) can be faster.
                am, bm = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
                seconds = best_seconds(lambda: torch._C._nn.mkldnn_linear(am, bm, None), device)
                rates[name]["matmul_onednn"] = 2 * m * k * k / seconds / 1e9
        rates[name]["attention"] = attention_rate(device, dtype, batch)
    return rates


def attention_rate(device: torch.device, dtype: torch.dtype, batch: int) -> float:
    """GFLOP/s of PyTorch's attention, forward and backward, on the shape of SD1.5's first self-attention at
    512 px (4096 tokens, 8 heads of 40): the step's attention runs at this rate, not at the matmul rate."""
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    shape = (batch, 8, 4096, 40)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape, device=device, dtype=dtype)

    def forward_and_backward():
        torch.autograd.grad(torch.nn.functional.scaled_dot_product_attention(q, k, v), (q, k, v), grad)

    flops = sdpa_flop_count(shape, shape, shape) + sdpa_backward_flop_count(shape, shape, shape, shape)
    return flops / best_seconds(forward_and_backward, device, repeats=3, budget=1.0) / 1e9


def capability(device: torch.device) -> str:
    """What the device's kernels can use: a GPU's compute capability; for a CPU the vector instructions PyTorch
    dispatches to (AVX2, AVX512...), or AVX512-BF16 / AMX where bfloat16 runs natively."""
    if device.type == "cuda":
        return "sm_%d%d" % torch.cuda.get_device_capability(device)
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        return "AMX"
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        return "AVX512-BF16"
    return torch.backends.cpu.get_cpu_capability()


def machine_description(device: torch.device) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            first_cpu = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
            fields = {key.strip(): value.strip() for key, _, value in
                      (line.partition(":") for line in first_cpu.splitlines()) if value}
            name = fields.get("model name", name)
            # A virtual machine's model name may be the vendor's alone ("AMD EPYC"); family and model tell
            # the generations apart (AMD family 25 is Zen 3 and 4, 26 Zen 5).
            if "cpu family" in fields and "model" in fields:
                name += f" (family {fields['cpu family']}, model {fields['model']})"
        except OSError:
            pass
    return {"device": str(device), "name": name, "capability": capability(device), "threads": torch.get_num_threads(),
            "torch": torch.__version__}
