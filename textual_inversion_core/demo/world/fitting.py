"""How every network of the world is trained: AdamW on a one-cycle schedule, one update per loss."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def one_cycle(parameters: Iterable[torch.nn.Parameter], lr: float, steps: int, warmup: float,
              weight_decay: float) -> Callable[[torch.Tensor], float]:
    """An ``update(loss)`` that takes one optimiser step on ``loss`` and returns its value; the rate rises over
    the first ``warmup`` share of ``steps`` and then anneals."""
    optimiser = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=warmup)

    def update(loss: torch.Tensor) -> float:
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        return loss.item()

    return update
