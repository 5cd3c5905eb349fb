"""The CLIP's text encoders as a ``PromptEncoder``, honouring its settings (CLIP Set Last Layer, LoRA patches)."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ...textual_inversion_core.families import ENCODER_WIDTHS
from ...textual_inversion_core.inspection import median_row_norm
from ...textual_inversion_core.interfaces import Conditioning
from ...textual_inversion_core.lora.adapter import text_encoder_prefix
from .pseudo_words import clip_tokenizers, tokenizer_with_word


class ComfyPromptEncoder:
    """The CLIP's text encoders, with the word's vectors where its token stands."""

    def __init__(self, clip):
        # A clone of our own: encode() swaps its tokenizer, which must never be the caller's.
        self._clip = clip.clone()
        self._tokenizer = clip.tokenizer
        self._tokenizers = clip_tokenizers(clip.tokenizer)
        self.encoder_widths = {name: ENCODER_WIDTHS[name] for name in self._tokenizers}

    def word_vectors(self, text: str) -> dict[str, torch.Tensor]:
        result = {}
        for name, tokenizer in self._tokenizers.items():
            ids = tokenizer.tokenizer(text)["input_ids"][tokenizer.tokens_start:]
            if tokenizer.tokenizer_adds_end_token:
                ids = ids[:-1]
            table = text_encoder(self._clip, name).transformer.get_input_embeddings().weight
            rows = table[torch.tensor(ids, dtype=torch.long, device=table.device)]
            result[name] = rows.detach().to(device="cpu", dtype=torch.float32).clone()
        return result

    def median_token_norms(self) -> dict[str, float]:
        return {name: median_row_norm(text_encoder(self._clip, name).transformer.get_input_embeddings().weight)
                for name in self._tokenizers}

    def adaptable_layers(self) -> dict[str, torch.nn.Linear]:
        names = [name for name in ENCODER_WIDTHS if name in self._tokenizers]
        layers = {}
        for index, name in enumerate(names):
            prefix = text_encoder_prefix(index, len(names))
            for path, module in text_encoder(self._clip, name).transformer.named_modules():
                if isinstance(module, torch.nn.Linear) and ".layers." in path:
                    layers[prefix + path.replace(".", "_")] = module
        return layers

    def encode(self, prompts: Sequence[str], token: str, vectors: dict[str, torch.Tensor]) -> Conditioning:
        self._clip.tokenizer = tokenizer_with_word(self._tokenizer, token, vectors)
        contexts, pooled = [], []
        for prompt in prompts:
            # Prompts are literal here: a caption's parentheses are text, not ComfyUI's emphasis syntax.
            tokens = self._clip.tokenize(prompt, disable_weights=True)
            context, pooled_output = self._clip.encode_from_tokens(tokens, return_pooled=True)
            contexts.append(context)
            pooled.append(pooled_output)
        return Conditioning(
            context=torch.cat(repeat_to_common_length(contexts)),
            pooled=None if pooled[0] is None else torch.cat(pooled),
        )


def text_encoder(clip, name: str) -> torch.nn.Module:
    """The SDClipModel for encoder ``name`` (clip_l, clip_h, clip_g) in a CLIP's cond_stage_model."""
    return getattr(clip.cond_stage_model, name)


def repeat_to_common_length(contexts: list[torch.Tensor]) -> list[torch.Tensor]:
    """Long prompts encode to several 77-token chunks; like ComfyUI's sampler, repeat each context along the
    token axis to the least common multiple so a batch can be stacked."""
    lengths = {c.shape[1] for c in contexts}
    if len(lengths) == 1:
        return contexts
    common = math.lcm(*lengths)
    return [c.repeat(1, common // c.shape[1], 1) for c in contexts]
