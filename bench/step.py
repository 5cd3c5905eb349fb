"""Seconds per textual-inversion step on this machine, against the FLOP floor measured in the same run.

On an SD1.5-architecture model with random weights (built here in diffusers format, or ``--model``), one run
measures and prints:

- the machine and what its kernels can use (for a CPU: AVX2, AVX512, AVX512-BF16 or AMX);
- its matmul and convolution rates in float32 and, where the device computes one natively, in the half precision
  the default trains in (GFLOP/s), and PyTorch's attention's (forward and backward on SD1.5's largest
  self-attention);
- the FLOPs of one training step (text encoder, UNet forward and the backward to the word's vectors), counted
  by torch's FlopCounterMode;
- per resolution (batch 1): the median seconds per step after warm-up, the peak memory (RSS; VRAM on a GPU) and
  the one-off latent-cache time, for the defaults a user gets (``default``: what ``python -m
  textual_inversion_core train`` does), the same in float32 (``fp32``) and diffusers' example trainer's step
  (``example``: float32, VAE encode every step, gradient of the whole token-embedding table), and with
  ``--comfyui`` the Train Embedding path through ComfyUI's own model objects on the same weights (``comfyui``:
  as ComfyUI loads them on this device; ``comfyui-bf16``: as ComfyUI started with ``--bf16-unet`` does;
  ``comfyui-core``: the ``default`` run again in ComfyUI's Python when that is another interpreter, so ComfyUI's
  step is held to the core's on the same torch build); and
  the pivotal LoRA stage's step (``lora``: the default run's, with the adapter training); and the default with
  ``--compile`` (``compiled``: its first step's seconds hold the compiling, and the table says after how many
  steps the faster steps have paid for it);
- whether the goals are met, at each resolution: the default step at most a third of the example's, at least 70 %
  of the float32 FLOP floor, at most half the example's peak RSS, ComfyUI's step within 1.2x the core's, and at
  least 70 % of the kernel floor in the dtype the default computes in on this machine, and the LoRA stage's
  training memory at most the word's plus the adapter's own (its weights, gradients and AdamW moments);
- the efficiency: the FLOP floor (the step's matmul FLOPs at the matmul rate plus its convolution FLOPs at the
  convolution rate) over the measured step, for each precision's rates;
- the kernel floor: the same with the attention FLOPs at the attention rate, i.e. the step if every kernel ran
  as fast as PyTorch's own does here, and how it compares with the example's step (what is reachable without a
  faster attention kernel).

Every run happens in a fresh process, so peak memory figures do not contaminate each other, and starts once the
machine is quiet; a run that other processes disturbed is measured again.

    python bench/step.py [--model DIR] [--sizes 256 512] [--warmup 2] [--steps 5] [--runs default fp32 example]
                         [--comfyui] [--device auto] [--quiet-load 1.5] [--patience 180] [--retries 2] [--json]

This file is the command line: it runs each child, assembles the report and prints it. The machine's rates are
measured in rates.py, the model built by sd15_model.py, the runs made by core_run.py, example_step.py and
comfyui_run.py (on training_run.py, flops.py and measure.py), and the verdicts and the table drawn by report.py.

``--model DIR`` uses that diffusers folder, or builds the random model there first when DIR does not exist
(about 4.4 GB; later runs reuse it). ``--comfyui`` needs ``COMFYUI_PATH`` (and runs ComfyUI with
``COMFYUI_PYTHON``, default this Python).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # this checkout's core, not an installed one

# Every child imports this file: the modules below import the core, diffusers and ComfyUI only inside the run
# that needs them, so a run's memory holds what that run uses and nothing of the others.
from comfyui_run import run_comfyui  # noqa: E402
from core_run import run_project  # noqa: E402
from example_step import run_example  # noqa: E402
from measure import load_average, wait_for_quiet  # noqa: E402
from rates import machine_description, measure_rates  # noqa: E402
from report import compile_payback, floors, goals, kernel_floors, print_table  # noqa: E402
from sd15_model import benchmark_model  # noqa: E402

RUNS = ("example", "fp32", "default", "lora", "compiled")
CHILDREN = {"default": run_project, "fp32": run_project, "lora": run_project, "compiled": run_project,
            "example": run_example,
            "comfyui": run_comfyui, "comfyui-bf16": run_comfyui, "comfyui-core": run_project}


def comfyui_python() -> str:
    return os.environ.get("COMFYUI_PYTHON", sys.executable)


def run_child(kind: str, size: int, args, count_flops: bool = False) -> dict:
    """One run in a fresh process, after waiting for a quiet machine; a run that other processes disturbed (its
    steps spread more than 25 %, or the load ended well above this run's own threads) is measured again, up to
    ``--retries`` times, and the run with the lowest median kept."""
    python = comfyui_python() if kind.startswith("comfyui") else sys.executable
    command = [python, str(Path(__file__).resolve()), "--child", kind, "--size", str(size), "--model", str(args.model),
               "--warmup", str(args.warmup), "--steps", str(args.steps), "--device", args.device]
    if count_flops:
        command.append("--count-flops")
    best = None
    for attempt in range(1 + args.retries):
        wait_for_quiet(args.quiet_load, args.patience)
        load = load_average()
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"The {kind} run at {size} px failed:\n{finished.stderr[-4000:]}")
        result = json.loads(finished.stdout.strip().splitlines()[-1])
        result["load_before"], result["load_after"] = load, load_average()
        if best is None or result["seconds_per_step"] < best["seconds_per_step"]:
            best = result
        # This run's own threads bring the load to about the number of cores; well above means company.
        crowded = (result["load_after"] or 0) > torch.get_num_threads() + 1
        if result["step_max"] <= 1.25 * result["step_min"] and not crowded:
            break
        print(f"  steps {result['step_min']:.2f}-{result['step_max']:.2f} s, load {load} -> {result['load_after']}; "
              + ("measuring again" if attempt < args.retries else "no retries left, keeping the best"), file=sys.stderr)
    best["attempts"] = attempt + 1
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="diffusers folder (built there if missing)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=[run for run in RUNS if run != "compiled"],
                        help="which runs (default all but compiled, whose compiling takes minutes)")
    parser.add_argument("--comfyui", action="store_true", help="also time the Train Embedding path in ComfyUI")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet-load", type=float, default=1.5,
                        help="before each run, wait for the 1-minute load average to fall below this (default 1.5)")
    parser.add_argument("--patience", type=float, default=180, help="seconds to wait for that at most (default 180)")
    parser.add_argument("--retries", type=int, default=2, help="times to re-measure a disturbed run (default 2)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        # ComfyUI may run in a Python of its own, with another torch.
        print(json.dumps({**CHILDREN[args.child](args), "torch": torch.__version__}))
        return
    if args.comfyui and not os.environ.get("COMFYUI_PATH"):
        parser.error("--comfyui needs COMFYUI_PATH (the ComfyUI folder) and, if it has its own Python, COMFYUI_PYTHON.")

    from textual_inversion_core.precision import native_compute_dtype, resolve_device

    device = resolve_device(args.device)
    # float32, and the half precision the default computes in where the device runs one natively: emulated
    # bfloat16 (AVX2 CPUs) is neither what the default uses nor measurable in reasonable time (~1 GFLOP/s).
    native = native_compute_dtype(device)
    dtypes = [torch.float32] + ([native] if native != torch.float32 else [])
    with benchmark_model(args.model) as args.model:
        report = {"machine": machine_description(device), "native_dtype": str(native_compute_dtype(device)),
                  "load_start": load_average(), "rates": measure_rates(device, dtypes), "sizes": {}}
        kinds = [k for k in RUNS if k in args.runs] + (["comfyui", "comfyui-bf16"] if args.comfyui else [])
        if args.comfyui and comfyui_python() != sys.executable:
            kinds.append("comfyui-core")
        for size in args.sizes:
            entry = {"runs": {}}
            for kind in kinds:
                print(f"{size} px: {kind} ...", file=sys.stderr)
                counter = "default" if "default" in kinds else "fp32"
                run = run_child(kind, size, args, count_flops=kind == counter)
                if "flops" in run:
                    entry["flops"] = run.pop("flops")
                entry["runs"][kind] = run
            report["sizes"][size] = entry
        # The machine's rates are the best seen at the start and at the end, so a busy moment cannot lower them.
        again = measure_rates(device, dtypes)
        for precision, rates in report["rates"].items():
            for kind, value in rates.items():
                rates[kind] = max(value, again[precision][kind])
        report["load_end"] = load_average()
        for entry in report["sizes"].values():
            if "flops" in entry:
                entry["floor_seconds"] = floors(entry["flops"], report["rates"])
                entry["kernel_floor_seconds"] = kernel_floors(entry["flops"], report["rates"])
            entry["goals"] = goals(entry)
            if (paid := compile_payback(entry["runs"])) is not None:
                entry["compile_payback"] = paid
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
