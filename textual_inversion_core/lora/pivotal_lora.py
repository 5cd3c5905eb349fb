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
    def num_vectors(self) -> int:
        return self.embedding.num_vectors

    def with_token(self, token: str) -> "PivotalLora":
        return PivotalLora(self.embedding.with_token(token), self.weights)

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


# What a run hands its callbacks and takes to resume from: the word, and its adapter once there is one.
Snapshot = Embedding | PivotalLora


def word_of(snapshot: Snapshot) -> Embedding:
    return snapshot.embedding if isinstance(snapshot, PivotalLora) else snapshot


def steps_trained(snapshot: Snapshot) -> int:
    """The steps behind a snapshot, the word's and the adapter's, as its metadata records them."""
    return int(snapshot.metadata.get("steps", 0)) + int(snapshot.metadata.get("lora_steps", 0))
