"""The CLIP's side of inspecting an embedding: its vocabularies, and how it tokenizes a prompt with the word
applied (where the word's vectors land among the prompt's 77-token chunks)."""

from __future__ import annotations

import torch

from ...textual_inversion_core.embedding import Embedding
from ...textual_inversion_core.inspection import PromptPlacement, Vocabulary, WordSlot
from .prompt_encoder import text_encoder
from .pseudo_words import clip_tokenizers, clip_with_word


def clip_vocabularies(clip) -> dict[str, Vocabulary]:
    """Each CLIP text encoder's token embeddings (as loaded, LoRA patches included) and its tokenizer's words."""
    clip.load_model()
    return {
        name: Vocabulary(
            text_encoder(clip, name).transformer.get_input_embeddings().weight.detach().to("cpu", torch.float32),
            tokenizer.inv_vocab,
        )
        for name, tokenizer in clip_tokenizers(clip.tokenizer).items()
    }


def prompt_placement(clip, embedding: Embedding, prompt: str) -> PromptPlacement:
    """``prompt`` tokenized as CLIP Text Encode would after Apply Embedding: the prompt tokens of each chunk, and
    the chunk and position of each of the word's vectors."""
    tokenized = clip_with_word(clip, embedding).tokenize(prompt, return_word_ids=True)
    # ComfyUI keys a tokenization by the encoder's short name ("l" for clip_l); every CLIP encoder of a model
    # splits a prompt the same way, so one of them tells where the word went.
    name, chunks = next((f"clip_{key}", chunks) for key, chunks in tokenized.items()
                        if f"clip_{key}" in embedding.vectors)
    vectors = embedding.vectors[name]
    # The tokenizer inserts each of the word's rows as a view of the embedding's own tensor, which tells them from
    # other words' vectors; position 0 is the chunk's start marker.
    home = vectors.untyped_storage().data_ptr()
    slots = [
        WordSlot(chunk_number, position, (token.storage_offset() - vectors.storage_offset()) // vectors.stride(0))
        for chunk_number, chunk in enumerate(chunks, 1)
        for position, (token, _, _) in enumerate(chunk)
        if isinstance(token, torch.Tensor) and token.untyped_storage().data_ptr() == home
    ]
    return PromptPlacement(
        prompt=prompt,
        # Word id 0 marks the start and end markers and the padding; every prompt token has its word's id.
        tokens_per_chunk=tuple(sum(1 for _, _, word in chunk if word) for chunk in chunks),
        word_slots=tuple(slots),
    )
