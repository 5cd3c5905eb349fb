"""Warnings a run gives while it goes, with the figure and what to change: vectors that run away, and a loss that
has stopped falling.

A denoising loss is mostly noise from step to step (each step draws its own timesteps and noise), so the
plateau test works on the means of windows of steps: it speaks when several windows in a row come out no lower
than the lowest before them (by a standard error), and only once the loss has been seen to fall (the lowest
window below the first by more than twice their standard errors): a loss never seen falling says nothing about a
plateau.
"""

from __future__ import annotations

import math
from statistics import fmean, pvariance

RUNAWAY_RATIO = 3.0  # a vector this many times the vocabulary's median norm
WINDOWS_WITHOUT_FALL = 3  # windows in a row none lower than the lowest before them


class TrainingAdvisor:
    """Fed every step's loss and vector norms; returns each warning once, when it first applies."""

    def __init__(self, total_steps: int, window: int | None = None):
        self.window = window or max(50, total_steps // 10)
        self.losses: list[float] = []
        # (mean, standard error, last step) of the first window and of the lowest so far
        self.first: tuple[float, float, int] | None = None
        self.best: tuple[float, float, int] | None = None
        self.has_fallen = False
        self.windows_since_best = 0
        self.warned: set[str] = set()

    def after_step(self, step: int, loss: float, norm_ratio: float, learning_rate: float,
                   norm_control: str) -> list[str]:
        warnings = []
        if norm_ratio > RUNAWAY_RATIO and "runaway" not in self.warned:
            self.warned.add("runaway")
            control = "" if norm_control != "off" else " or set norm_control to rescale or penalty"
            warnings.append(
                f"By step {step} the word's largest vector has {norm_ratio:.1f}x the norm of a typical word "
                f"(the vocabulary's median); a word that large tends to drown the rest of its prompts. Lower the "
                f"learning rate (now {learning_rate:g}, try {learning_rate / 2:g}){control}.")
        self.losses.append(loss)
        if len(self.losses) == self.window:
            warnings += self._close_window(step)
            self.losses = []
        return warnings

    def _close_window(self, step: int) -> list[str]:
        mean = fmean(self.losses)
        error = math.sqrt(pvariance(self.losses) / len(self.losses))
        if self.first is None:
            self.first = self.best = (mean, error, step)
            return []
        # Lower by a standard error at least: in a flat stretch the lowest of many noisy windows is hard to beat
        # by chance, while a slow real fall still beats it window after window.
        if mean < self.best[0] - error:
            self.best, self.windows_since_best = (mean, error, step), 0
            first_mean, first_error, _ = self.first
            self.has_fallen = self.has_fallen or first_mean - mean > 2 * math.hypot(error, first_error)
            return []
        self.windows_since_best += 1
        if not self.has_fallen or self.windows_since_best < WINDOWS_WITHOUT_FALL or "plateau" in self.warned:
            return []
        self.warned.add("plateau")
        best_mean, _, best_step = self.best
        return [
            f"The loss has not fallen since about step {best_step} (mean {best_mean:.4f} over the "
            f"{self.window} steps to it, {mean:.4f} over the last {self.window}): more steps at this learning rate "
            f"add little. Keep the word from about step {best_step} (checkpoint_every saves one), or lower the "
            "learning rate for a finer finish."
        ]
