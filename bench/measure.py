"""How every figure of a run is taken: the device waited for before the clock is read, the measured steps'
median and spread, the peak memory, and the dtype names the figures are labelled with."""

from __future__ import annotations

import os
import resource
import statistics
import time
from pathlib import Path

import torch


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def wait_for_quiet(threshold: float, patience: float) -> None:
    """Wait (at most ``patience`` seconds) until the 1-minute load average is below ``threshold``: timings taken
    while other processes share the cores measure them as much as this one."""
    deadline = time.monotonic() + patience
    while (load_average() or 0) >= threshold and time.monotonic() < deadline:
        time.sleep(5)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_seconds(measured: list[float]) -> dict:
    """The measured steps' median, the figure every comparison uses, and their spread."""
    return {"seconds_per_step": statistics.median(measured), "step_min": min(measured), "step_max": max(measured)}


def dtype_name(dtype: torch.dtype | None) -> str | None:
    return str(dtype).removeprefix("torch.") if dtype else None


def rss_high_water_mark() -> int | None:
    """The kernel's peak-RSS mark for this process, in bytes (Linux)."""
    try:
        return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        return None


LOADING_PEAK = [0]


def start_training_memory_watch() -> None:
    """Note the peak so far (loading) and reset the kernel's mark, so the peak seen from now on is training's."""
    LOADING_PEAK[0] = rss_high_water_mark() or 0
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory(device: torch.device) -> dict:
    """The whole run's peak RSS (loading included), the peak since start_training_memory_watch(), and on a GPU
    the peak of allocated VRAM."""
    training = rss_high_water_mark()
    whole = max(LOADING_PEAK[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux counts KiB
    memory = {"peak_rss_bytes": whole, "train_rss_bytes": training}
    if device.type == "cuda":
        memory["peak_vram_bytes"] = torch.cuda.max_memory_allocated(device)
    return memory
