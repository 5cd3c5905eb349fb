"""What a host watches a run through and steers it with: each step's figures, checkpoints, previews, stopping."""

from __future__ import annotations

import dataclasses

from ..embedding import Embedding


@dataclasses.dataclass
class StepReport:
    step: int  # 1-based
    total: int
    loss: float
    learning_rate: float
    elapsed: float  # seconds since the first step of this run began
    eta: float  # seconds still to go at the pace so far
    norm_ratio: float = 1.0  # the largest vector's norm over the vocabulary's median token norm


class TrainingCallbacks:
    """Hooks a host overrides to watch, preview, checkpoint and stop a run."""

    # Exceptions the host raises in the middle of a step to stop the run (ComfyUI's interrupt, raised inside its
    # layers). The run then ends as if ``should_stop`` had said so before that step: the step does not count,
    # and the result holds the vectors of the last finished one.
    interrupted_by: tuple[type[BaseException], ...] = ()

    def on_latents_cached(self) -> None:
        """The pictures are encoded: the trainer will not use the latent encoder (the VAE) again."""

    def on_step(self, report: StepReport) -> None:
        pass

    def on_warning(self, message: str) -> None:
        """Something about the run the user should change (a runaway norm, a plateau), said once."""

    def on_checkpoint(self, embedding: Embedding, step: int) -> None:
        pass

    def on_preview(self, embedding: Embedding, step: int) -> None:
        pass

    def should_stop(self) -> bool:
        return False
