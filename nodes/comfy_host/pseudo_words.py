"""Bare pseudo-words in ComfyUI prompts: a CLIP whose tokenizer turns ``<my-cat>`` into the word's vectors.

ComfyUI's tokenizers already accept tensors as tokens: ``embedding:name`` loads a file and inserts its rows,
and the text encoder splices them in place of token embeddings. A pseudo-word is handled the same way, from
memory instead of a file: a copy of each CLIP-L/H/G sub-tokenizer marks every occurrence of the word as
``embedding:<word>`` and answers that name with the vectors. Only the copy changes; the original tokenizer, which
``CLIP.clone()`` shares between clones, is never touched.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Mapping

import torch
from comfy.sd1_clip import SDTokenizer

from ...textual_inversion_core.embedding import Embedding, EmbeddingError
from ...textual_inversion_core.families import ENCODER_WIDTHS, family_of


def clip_tokenizers(tokenizer) -> dict[str, SDTokenizer]:
    """The CLIP text-encoder tokenizers inside a ComfyUI tokenizer, by encoder name (``clip_l``, ``clip_g``...).

    SD1/SD2 tokenizers hold one (``clip_l`` / ``clip_h``), SDXL's two; others (T5 and the like) are left out.
    """
    return {
        sub.embedding_key: sub
        for sub in vars(tokenizer).values()
        if isinstance(sub, SDTokenizer) and sub.embedding_key in ENCODER_WIDTHS
    }


def clip_family(clip) -> str | None:
    """``sd1``, ``sd2`` or ``sdxl`` from the CLIP encoders a ComfyUI CLIP holds; None for other combinations."""
    return family_of(frozenset(clip_tokenizers(clip.tokenizer)))


def check_clip_fits(clip, embedding: Embedding) -> None:
    """Raise a clear error unless ``embedding`` has vectors for the CLIP's text encoders."""
    names = set(clip_tokenizers(clip.tokenizer))
    if not names:
        raise EmbeddingError(
            "This CLIP has no CLIP-L, CLIP-H or CLIP-G text encoder, so a textual-inversion embedding cannot "
            "be applied to it. Use the CLIP output of a Stable Diffusion 1.x, 2.x or SDXL checkpoint loader."
        )
    family = family_of(frozenset(names))
    if family is not None:
        embedding.check_family(family)
    elif not names & set(embedding.vectors):
        raise EmbeddingError(
            f"The embedding {embedding.token!r} has vectors for {', '.join(embedding.vectors)}, but this CLIP's "
            f"text encoders are {', '.join(sorted(names))}."
        )


def clip_with_word(clip, embedding: Embedding):
    """A clone of ``clip`` on which the bare ``embedding.token`` stands for the embedding's vectors."""
    check_clip_fits(clip, embedding)
    clone = clip.clone()
    clone.tokenizer = tokenizer_with_word(clip.tokenizer, embedding.token, embedding.vectors)
    return clone


def tokenizer_with_word(tokenizer, token: str, vectors: Mapping[str, torch.Tensor]):
    """A copy of a ComfyUI tokenizer whose CLIP sub-tokenizers map ``token`` to ``vectors[encoder name]``.

    Words taught to ``tokenizer`` before (an earlier Apply Embedding) are kept; the same word again is replaced.
    The vectors are inserted as they are, so tensors that require grad keep their gradient path (training).
    """
    result = copy.copy(tokenizer)
    for attribute, sub in vars(tokenizer).items():
        if isinstance(sub, SDTokenizer) and sub.embedding_key in vectors:
            setattr(result, attribute, _sub_tokenizer_with_word(sub, token, vectors[sub.embedding_key]))
    return result


class _PseudoWordTokenizer:
    """Mixed into a copy of an ``SDTokenizer`` subclass; ``pseudo_words`` maps a lower-cased word to its rows."""

    pseudo_words: dict[str, torch.Tensor]

    def tokenize_with_weights(self, text: str, return_word_ids=False, **kwargs):
        return super().tokenize_with_weights(self._mark_pseudo_words(text), return_word_ids, **kwargs)

    def _mark_pseudo_words(self, text: str) -> str:
        # Surrounding spaces make the marker its own word for ComfyUI's "embedding:" splitter; CLIP's tokenizer
        # ignores extra white space, and weights such as "(<my-cat>:1.2)" still parse around it.
        return self._pseudo_word_pattern().sub(lambda m: f" {self.embedding_identifier}{m.group(0).lower()} ", text)

    def _pseudo_word_pattern(self) -> re.Pattern:
        words = sorted(self.pseudo_words, key=len, reverse=True)
        alternatives = "|".join(re.escape(word) for word in words)
        # A whole word only, and not one already written as "embedding:<name>".
        return re.compile(rf"(?<!\w)(?<!{re.escape(self.embedding_identifier)})(?:{alternatives})(?!\w)", re.IGNORECASE)

    def _try_get_embedding(self, embedding_name: str):
        word, *rest = embedding_name.split() or [""]
        vectors = self.pseudo_words.get(word.lower())
        if vectors is None:
            return super()._try_get_embedding(embedding_name)
        return vectors, " ".join(rest)


@functools.cache
def _pseudo_word_class(base: type) -> type:
    return type(f"PseudoWord{base.__name__}", (_PseudoWordTokenizer, base), {})


def _sub_tokenizer_with_word(sub: SDTokenizer, token: str, vectors: torch.Tensor) -> SDTokenizer:
    result = copy.copy(sub)
    if not isinstance(result, _PseudoWordTokenizer):
        result.__class__ = _pseudo_word_class(type(sub))
    result.pseudo_words = {**getattr(sub, "pseudo_words", {}), token.lower(): vectors}
    if result.embedding_directory is None:
        # ComfyUI only looks up "embedding:" names when it has a directory list; an empty one finds no files.
        result.embedding_directory = []
    return result
