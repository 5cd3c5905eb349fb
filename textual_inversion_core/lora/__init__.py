"""Pivotal tuning's second stage: a low-rank adapter on the frozen UNet, trained around a learned word.

- ``adapter``       LowRankAdapter: down/up pairs on the UNet's linear layers as forward hooks, kohya names
- ``pivotal_lora``  PivotalLora: the word and its adapter, the value the stage produces; Snapshot: either
"""

from .adapter import LAYER_SETS, AdapterError, LowRankAdapter, model_layers, select_layers
from .pivotal_lora import PivotalLora, Snapshot, steps_trained, word_of

__all__ = ["LAYER_SETS", "AdapterError", "LowRankAdapter", "PivotalLora", "Snapshot", "model_layers", "select_layers",
           "steps_trained", "word_of"]
