"""The optimisation loop that learns a pseudo-word: its settings, its hooks for hosts, and the loop itself.

- ``config``     TrainingConfig, validated on construction, and the defaults with the evidence behind them
- ``callbacks``  what a host watches and steers a run through: steps, checkpoints, previews, stopping
- ``loop``       train_embedding: pictures → latents → loss → vectors
- ``norm_control``  keeping the vectors the size of real words: a rescale, or a penalty
- ``advice``     warnings with the figure and what to change: a runaway norm, a loss that stopped falling
"""

from .callbacks import StepReport, TrainingCallbacks
from .config import DEFAULT_LEARNING_RATE, DEFAULT_STEPS, TrainingConfig
from .loop import TrainingDiverged, TrainingResult, batch_loss, cache_latents, initial_vectors, train_embedding

__all__ = [
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_STEPS",
    "StepReport",
    "TrainingCallbacks",
    "TrainingConfig",
    "TrainingDiverged",
    "TrainingResult",
    "batch_loss",
    "cache_latents",
    "initial_vectors",
    "train_embedding",
]
