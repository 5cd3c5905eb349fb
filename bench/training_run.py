"""What every run trains: the benchmark's word and its pictures, and the core's trainer timed step by step on a
host's frozen model (the project's own runs and ComfyUI's)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from measure import step_seconds

TOKEN = "<bench-ball>"
INIT_TEXT = "ball"
PICTURES = 4


def concept_pictures(size: int, count: int = PICTURES):
    from textual_inversion_core.data import load_concept_folder
    from textual_inversion_core.demo.pictures import draw_concept_pictures

    with tempfile.TemporaryDirectory() as folder:
        draw_concept_pictures(Path(folder), count=count)
        return load_concept_folder(folder, resolution=size)


class StepClock:
    """Notes when each training step ends (the trainer waits for the device every step)."""

    def __init__(self):
        self.ends: list[float] = []
        self.first_elapsed = 0.0


def timed_training(trainer, frozen, pictures, warmup: int, steps: int, lora: bool = False) -> dict:
    """Train for warm-up + measured steps with ``trainer`` (the core's training package); the median seconds per
    measured step and the one-off time before the first step (the latent cache). With ``lora`` every step is a
    pivotal LoRA step (the default rank and layers) around the init word."""
    clock = StepClock()

    class Callbacks(trainer.TrainingCallbacks):
        def on_step(self, report):
            clock.ends.append(time.perf_counter())
            if report.step == 1:
                clock.first_elapsed = report.elapsed

    config = trainer.TrainingConfig(token=TOKEN, init_text=INIT_TEXT, steps=0 if lora else warmup + steps,
                                    lora_steps=warmup + steps if lora else 0, seed=0)
    started = time.perf_counter()
    result = trainer.train_embedding(frozen, pictures, config, Callbacks())
    ends = [started] + clock.ends
    durations = [b - a for a, b in zip(ends, ends[1:])]
    trained = {}
    if lora:
        # The adapter's own memory in training: weights, gradients and AdamW's two moments, float32.
        parameters = sum(w.numel() for k, w in result.lora.weights.items() if not k.endswith(".alpha"))
        trained = {"adapter_parameters": parameters, "adapter_training_bytes": 4 * 4 * parameters}
    return {
        **trained,
        **step_seconds(durations[warmup:]),
        # The first interval also holds the one-off work before the first step: the latent cache, the init vectors.
        "cache_seconds": durations[0] - clock.first_elapsed,
        "first_step_seconds": clock.first_elapsed,
        "final_loss": result.losses[-1],
    }
