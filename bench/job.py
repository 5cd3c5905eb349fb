"""The whole job, end to end: diffusers' example trainer against this project's command line, each a fresh
process timed from its start to the written embedding, on the same SD1.5-architecture model with random weights,
the same four pictures, resolution, steps and batch.

What a user waits for is the job, not the step: starting Python, importing, loading the weights, preparing the
pictures (the project caches their latents once; the example encodes them every step), the steps and writing the
file. Both run as users run them:

- the example (``diffusers_example.py``: the unmodified script through ``accelerate launch``, its README's
  settings) with one picture per optimizer step (``--gradient_accumulation_steps=1``, the project's default
  batch), so both do the same number of denoising passes;
- ``python -m textual_inversion_core train`` at its defaults but ``--steps`` and ``--resolution``.

The runs alternate (example, project, example, ...) ``--repeats`` times, each after the machine is quiet, and the
fastest of each is kept. The goal: the project at least 2x faster than the example where it trains in float32
(a CPU without bfloat16 hardware, e.g. AVX2), at least 2.5x where it trains in bfloat16 on a CPU.

    python bench/job.py [--model DIR] [--size 256] [--steps 30] [--repeats 1] [--json]

``--model DIR`` uses that diffusers folder, or builds the random model there first when DIR does not exist
(about 4.4 GB). The example's script is found as ``diffusers_example.py`` says.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from diffusers_example import run_example  # noqa: E402
from measure import wait_for_quiet  # noqa: E402
from rates import machine_description  # noqa: E402
from sd15_model import benchmark_model  # noqa: E402
from training_run import PICTURES, TOKEN  # noqa: E402

# The example's README accumulates four pictures per update; the project's default is one.
SAME_BATCH = ("--gradient_accumulation_steps=1",)
# The example refuses an init word of several tokens; "ball" is three in the random model's small vocabulary.
INIT_WORD = "toy"


def goal_ratio(device: torch.device, default_dtype: torch.dtype) -> float | None:
    """How many times faster than the example the job should be here (None: the issue sets none)."""
    if device.type != "cpu":
        return None
    return 2.5 if default_dtype == torch.bfloat16 else 2.0


def run_project_job(model: Path, images: Path, out: Path, size: int, steps: int) -> dict:
    command = [sys.executable, "-m", "textual_inversion_core", "train", "--model", str(model), "--images", str(images),
               "--token", TOKEN, "--init", INIT_WORD, "--out", str(out / "word.safetensors"), "--steps", str(steps),
               "--resolution", str(size)]
    log = out / "project.log"
    out.mkdir(parents=True)
    with open(log, "w", encoding="utf-8") as handle:
        started = time.perf_counter()
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPOSITORY)
        seconds = time.perf_counter() - started
    if done.returncode != 0 or not (out / "word.safetensors").is_file():
        raise RuntimeError(f"The project's job failed ({done.returncode}); log {log}:\n"
                           f"{log.read_text(errors='replace')[-3000:]}")
    return {"seconds": seconds, "command": command}


def run_example_job(model: Path, images: Path, out: Path, size: int, steps: int) -> dict:
    run = run_example(None, model, images, TOKEN, INIT_WORD, "object", out, resolution=size, steps=steps,
                      save_every=steps + 1, extra_args=SAME_BATCH)
    return {"seconds": run.seconds, "command": list(run.command)}


def measure_jobs(model: Path, size: int, steps: int, repeats: int, quiet_load: float, patience: float) -> dict:
    from textual_inversion_core.demo.pictures import draw_concept_pictures

    runs: dict[str, list[float]] = {"example": [], "project": []}
    commands = {}
    with tempfile.TemporaryDirectory() as scratch:
        images = Path(scratch) / "pictures"
        draw_concept_pictures(images, count=PICTURES)
        for attempt in range(repeats):
            for name, job in (("example", run_example_job), ("project", run_project_job)):
                wait_for_quiet(quiet_load, patience)
                print(f"{name} job {attempt + 1}/{repeats} ...", file=sys.stderr)
                result = job(model, images, Path(scratch) / f"{name}-{attempt}", size, steps)
                runs[name].append(result["seconds"])
                commands[name] = result["command"]
    return {"seconds": runs, "commands": commands}


def report(args, device: torch.device) -> dict:
    from textual_inversion_core.precision import native_compute_dtype

    default_dtype = native_compute_dtype(device)
    measured = measure_jobs(args.model, args.size, args.steps, args.repeats, args.quiet_load, args.patience)
    example, project = (min(measured["seconds"][name]) for name in ("example", "project"))
    goal = goal_ratio(device, default_dtype)
    speedup = example / project
    return {
        "machine": machine_description(device),
        "default_dtype": str(default_dtype).removeprefix("torch."),
        "size": args.size, "steps": args.steps, "pictures": PICTURES, "batch": 1,
        "example_seconds": example, "project_seconds": project, "speedup": speedup,
        "goal_speedup": goal, "goal_met": None if goal is None else speedup >= goal,
        "all_seconds": measured["seconds"], "commands": measured["commands"],
    }


def print_report(result: dict) -> None:
    machine = result["machine"]
    print(f"{machine['name']} ({machine['capability']}, {machine['threads']} threads), torch {machine['torch']}; "
          f"the project's default trains in {result['default_dtype']}")
    print(f"one job: {result['steps']} steps of batch 1 at {result['size']} px on {result['pictures']} pictures, "
          f"from process start to the written embedding")
    print(f"  diffusers' example  {result['example_seconds']:8.1f} s")
    print(f"  this project        {result['project_seconds']:8.1f} s")
    goal = result["goal_speedup"]
    verdict = ("no goal on this device" if goal is None
               else f"goal {goal}x: {'met' if result['goal_met'] else 'NOT met'}")
    print(f"  speed-up            {result['speedup']:8.2f}x  ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="diffusers folder (built there if missing)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1, help="jobs of each kind, alternating; the fastest is kept")
    parser.add_argument("--quiet-load", type=float, default=1.5,
                        help="before each job, wait for the 1-minute load average to fall below this (default 1.5)")
    parser.add_argument("--patience", type=float, default=180, help="seconds to wait for that at most (default 180)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")

    from textual_inversion_core.precision import resolve_device

    device = resolve_device("auto")
    with benchmark_model(args.model) as args.model:
        result = report(args, device)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
