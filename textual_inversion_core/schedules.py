"""Learning-rate schedules: a rate for every optimisation step.

Besides the usual shapes (constant, cosine, linear decay, each with an optional linear warm-up), the rate may
be given in AUTOMATIC1111's step syntax, ``"0.005:100, 1e-3:1000, 1e-5"``: 0.005 up to step 100, then 1e-3 up
to step 1000, then 1e-5 to the end — the form most embedding recipes are shared in.
"""

from __future__ import annotations

import math
from typing import Callable

from .errors import ConfigError

SCHEDULE_KINDS = ("constant", "cosine", "linear")


def parse_step_syntax(spec: str) -> list[tuple[float, int | None]]:
    """``"0.005:100, 1e-5"`` → ``[(0.005, 100), (1e-5, None)]``; raises ConfigError naming the bad part."""
    pieces = [p.strip() for p in spec.split(",") if p.strip()]
    if not pieces:
        raise ConfigError("learning rate is empty; give a number like 0.005 or steps like '0.005:100, 1e-3'.")
    stages: list[tuple[float, int | None]] = []
    last_end = 0
    for i, piece in enumerate(pieces):
        rate_text, _, end_text = piece.partition(":")
        try:
            rate = float(rate_text)
            end = int(end_text) if end_text.strip() else None
        except ValueError:
            raise ConfigError(
                f"learning rate part {piece!r} is not 'rate' or 'rate:until_step' (e.g. '0.005:100, 1e-3')."
            ) from None
        if not (rate > 0 and math.isfinite(rate)):
            raise ConfigError(f"learning rate {rate_text.strip()!r} must be a positive number.")
        if end is None and i != len(pieces) - 1:
            raise ConfigError(f"learning rate part {piece!r} needs ':until_step'; only the last part may omit it.")
        if end is not None and end <= last_end:
            raise ConfigError(f"learning rate steps must increase; {piece!r} ends at or before step {last_end}.")
        last_end = end or last_end
        stages.append((rate, end))
    return stages


def make_schedule(
    learning_rate: float | str,
    total_steps: int,
    kind: str = "constant",
    warmup_steps: int = 0,
) -> Callable[[int], float]:
    """The rate at each 1-based step. A step-syntax string sets the base rate per step; the shape scales it."""
    if kind not in SCHEDULE_KINDS:
        raise ConfigError(f"lr schedule must be one of {', '.join(SCHEDULE_KINDS)}, got {kind!r}.")
    if warmup_steps < 0:
        raise ConfigError("warmup steps must be 0 or more.")
    if isinstance(learning_rate, str):
        stages = parse_step_syntax(learning_rate)
    else:
        stages = parse_step_syntax(repr(float(learning_rate)))

    def base_rate(step: int) -> float:
        for rate, end in stages:
            if end is None or step <= end:
                return rate
        return stages[-1][0]  # the last stage had an end step: keep its rate after it, as A1111 does

    def rate(step: int) -> float:
        if warmup_steps and step <= warmup_steps:
            return base_rate(step) * step / warmup_steps
        decay_steps = max(1, total_steps - warmup_steps)
        # Step 1 after warm-up runs at the full rate and the last step just above zero, so no step is wasted.
        progress = min(1.0, max(0.0, (step - warmup_steps - 1) / decay_steps))
        if kind == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        elif kind == "linear":
            shape = 1.0 - progress
        else:
            shape = 1.0
        return base_rate(step) * shape

    return rate
