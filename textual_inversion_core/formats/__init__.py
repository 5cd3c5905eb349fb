"""Embedding files: every layout the popular trainers write, read safely; files every host accepts, written.

- ``reading``      load_embedding: recognises the container (safetensors, PyTorch pickle, A1111 picture)
- ``safe_pickle``  .pt/.bin through PyTorch's restricted unpickler; files that would run code are refused
- ``picture``      A1111 embeddings inside PNG/WebP (text chunk and pixel strips)
- ``layouts``      the key layouts inside a file (A1111, emb_params, clip_l/clip_g, diffusers), both ways
- ``metadata``     metadata as safetensors header strings, and the tool's version
- ``writing``      save_embedding: safetensors, A1111 .pt, diffusers, A1111 picture; atomic, no clobbering
- ``pivotal_lora`` a word and its LoRA as one kohya-layout LoRA file with the word bundled (bundle_emb.*)
"""

from .describe import describe_embedding
from .errors import EmbeddingFileError, UnsafeEmbeddingFileError
from .reading import READABLE_SUFFIXES, check_family, load_embedding
from .writing import EMBEDDING_FORMATS, save_embedding

__all__ = [
    "EMBEDDING_FORMATS",
    "READABLE_SUFFIXES",
    "EmbeddingFileError",
    "UnsafeEmbeddingFileError",
    "check_family",
    "describe_embedding",
    "load_embedding",
    "save_embedding",
]
