"""The extension ComfyUI loads (see the root ``__init__.py``): every node of this package."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .apply_embedding import ApplyEmbedding
from .combine_embeddings import CombineEmbeddings
from .evaluate_embedding import EvaluateEmbedding
from .inspect_embedding import InspectEmbedding
from .load_concept_images import LoadConceptImages
from .load_embedding import LoadEmbedding
from .load_pivotal_lora import LoadPivotalLora
from .save_embedding import SaveEmbedding
from .save_pivotal_lora import SavePivotalLora
from .train_embedding import TrainEmbedding
from .train_pivotal_lora import TrainPivotalLora


class TextualInversionExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [LoadConceptImages, TrainEmbedding, ApplyEmbedding, SaveEmbedding, LoadEmbedding, InspectEmbedding,
                CombineEmbeddings, EvaluateEmbedding, TrainPivotalLora, SavePivotalLora, LoadPivotalLora]
