"""A complete training run on this machine, offline, in a few minutes.

It builds a small Stable-Diffusion-1-style model with random weights, draws a few pictures of a made-up
concept, and trains a pseudo-word for it through the same job the command line's ``train`` runs. Random weights prove the
pipeline end to end (data, latents, loss, vectors, file, plot); they cannot show image quality.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..train_job import TrainJob, run_train_job
from ..training import TrainingConfig
from .pictures import draw_concept_pictures
from .tiny_models import build_random_model

DEMO_RESOLUTION = 64
DEMO_STEPS = 300
DEMO_TOKEN = "<demo-ball>"


def run_demo(out: Path, steps: int | None = None, overwrite: bool = False) -> int:
    started = time.perf_counter()
    print("Demo: a small SD1-style model with RANDOM weights, built here. It proves the training pipeline end "
          "to end; it cannot show image quality.", file=sys.stderr)
    model_dir, images_dir = out / "random-sd1-model", out / "concept"
    if not (model_dir / "model_index.json").exists():
        build_random_model(model_dir, family="sd1", seed=0)
    if not images_dir.is_dir():
        draw_concept_pictures(images_dir)
    embedding_path = out / "demo-ball.safetensors"
    run_train_job(TrainJob(
        model=model_dir, images=images_dir, out=embedding_path, resolution=DEMO_RESOLUTION, device="cpu",
        overwrite=overwrite, config=TrainingConfig(token=DEMO_TOKEN, init_text="ball", steps=steps or DEMO_STEPS),
    ))
    print(f"Demo finished in {time.perf_counter() - started:.0f} s. Inspect the result with:\n"
          f"  python -m textual_inversion_core info {embedding_path}", file=sys.stderr)
    return 0
