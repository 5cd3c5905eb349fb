"""A word and the low-rank adapter trained around it (pivotal tuning): the value the LoRA stage produces."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from ..embedding import Embedding
from .adapter import KOHYA_TEXT_PREFIXES, KOHYA_UNET_PREFIX


@dataclasses.dataclass(frozen=True)
class PivotalLora:
    """``embedding`` is the word (its metadata the whole run's); ``weights`` the adapter in the kohya layout."""

    embedding: Embedding
    weights: Mapping[str, torch.Tensor]

    @property
    def token(self) -> str:
        return self.embedding.token

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.embedding.metadata

    @property
    def rank(self) -> int:
        return next(w.shape[0] for k, w in self.weights.items() if k.endswith(".lora_down.weight"))

    @property
    def alpha(self) -> float:
        return float(next(w for k, w in self.weights.items() if k.endswith(".alpha")))

    def layer_names(self) -> list[str]:
        return sorted(k[:-len(".lora_down.weight")] for k in self.weights if k.endswith(".lora_down.weight"))

    def lora_weights(self) -> dict[str, torch.Tensor]:
        """The adapter alone (UNet and text encoders), as LoRA loaders that know nothing of bundled words take
        it."""
        return {k: v for k, v in self.weights.items() if k.startswith((KOHYA_UNET_PREFIX, *KOHYA_TEXT_PREFIXES))}
