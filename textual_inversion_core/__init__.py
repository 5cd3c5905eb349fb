"""Textual Inversion: learn a new pseudo-word for a frozen Stable Diffusion model, with no host required.

The public, stable API:

    from textual_inversion_core import Embedding, load_embedding, save_embedding
    from textual_inversion_core import TrainingConfig, train_embedding
"""

from .embedding import Embedding, EmbeddingError
from .formats import load_embedding, save_embedding
from .training import TrainingCallbacks, TrainingConfig, TrainingDiverged, TrainingResult, train_embedding

__all__ = [
    "Embedding",
    "EmbeddingError",
    "TrainingCallbacks",
    "TrainingConfig",
    "TrainingDiverged",
    "TrainingResult",
    "load_embedding",
    "save_embedding",
    "train_embedding",
]
