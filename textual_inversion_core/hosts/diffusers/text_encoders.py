"""The pipeline's text encoders as a ``PromptEncoder``.

Prompts are encoded exactly as diffusers' pipelines encode them, except that each occurrence of the pseudo-word
becomes ``n`` token slots whose embeddings are replaced, inside the text encoder's forward pass, by the word's
vectors. The vocabulary itself is never modified, so gradients reach only those vectors.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ...embedding import check_fits_family, check_word
from ...families import ENCODER_WIDTHS
from ...inspection import Vocabulary, median_row_norm
from ...interfaces import Conditioning
from ...lora.adapter import text_encoder_prefix

# A pipeline's tokenizer and text encoder for its first and second text encoder, by attribute (and folder) name.
PIPELINE_ENCODERS = (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))


class TextEncoder:
    """One CLIP text encoder with its tokenizer, under the name embeddings use for it (clip_l, clip_h, clip_g)."""

    def __init__(self, name: str, tokenizer, model: torch.nn.Module):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model
        self.length = tokenizer.model_max_length
        # Placeholder slots need some id in input_ids. transformers pools at the end marker's position, found
        # either as the first id equal to it or, for CLIP's legacy configs, as the highest id; an id that is
        # neither equal to nor above the end marker can never be mistaken for it.
        self.slot_id = 0 if tokenizer.eos_token_id != 0 else 1
        # Training draws its prompts from a few dozen templates: each is tokenized once, not once per step.
        self._tokenized: dict[tuple[str, str, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def vocabulary(self) -> Vocabulary:
        table = self.model.get_input_embeddings().weight.detach().to(device="cpu", dtype=torch.float32)
        return Vocabulary(table, {i: word for word, i in self.tokenizer.get_vocab().items()})

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def tokenize(self, prompt: str, token: str, n: int) -> tuple[list[int], list[int]]:
        """Input ids for ``prompt`` padded as the pipelines pad, and for each position the row of the word's
        vectors it takes (-1 where the vocabulary's own embedding stays)."""
        ids: list[int] = []
        rows: list[int] = []
        for i, piece in enumerate(prompt.split(token)):
            if i > 0:
                ids += [self.slot_id] * n
                rows += range(n)
            piece_ids = self.token_ids(piece)
            ids += piece_ids
            rows += [-1] * len(piece_ids)
        content = self.length - 2
        ids = [self.tokenizer.bos_token_id] + ids[:content] + [self.tokenizer.eos_token_id]
        rows = [-1] + rows[:content] + [-1]
        padding = self.length - len(ids)
        return ids + [self.tokenizer.pad_token_id] * padding, rows + [-1] * padding

    def run(self, prompts: Sequence[str], token: str, vectors: torch.Tensor):
        """The encoder's output for ``prompts`` with ``vectors`` written into the word's slots."""
        tokenized = [self._tokenized_on_device(prompt, token, vectors.shape[0]) for prompt in prompts]
        ids = torch.stack([t[0] for t in tokenized])
        rows = torch.stack([t[1] for t in tokenized])
        in_slot = (rows >= 0).unsqueeze(-1)

        def inject(module, inputs, output):
            chosen = vectors.to(device=output.device, dtype=output.dtype)[rows.clamp(min=0)]
            return torch.where(in_slot, chosen, output)

        handle = self.model.get_input_embeddings().register_forward_hook(inject)
        try:
            return self.model(ids, output_hidden_states=True)
        finally:
            handle.remove()

    def _tokenized_on_device(self, prompt: str, token: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (prompt, token, n)
        if key not in self._tokenized:
            if len(self._tokenized) >= 4096:  # captions and templates are few; this only bounds a misuse
                self._tokenized.clear()
            ids, rows = self.tokenize(prompt, token, n)
            device = self.model.device
            self._tokenized[key] = (torch.tensor(ids, device=device), torch.tensor(rows, device=device))
        return self._tokenized[key]


class DiffusersPromptEncoder:
    """The pipeline's text encoders as a ``PromptEncoder``."""

    def __init__(self, encoders: list[TextEncoder], family: str):
        self._encoders = encoders
        self._family = family
        self.encoder_widths = {e.name: ENCODER_WIDTHS[e.name] for e in encoders}

    def word_vectors(self, text: str) -> dict[str, torch.Tensor]:
        result = {}
        for encoder in self._encoders:
            table = encoder.model.get_input_embeddings().weight
            ids = torch.tensor(encoder.token_ids(text), dtype=torch.long, device=table.device)
            result[encoder.name] = table[ids].detach().to(device="cpu", dtype=torch.float32).clone()
        return result

    def median_token_norms(self) -> dict[str, float]:
        return {e.name: median_row_norm(e.model.get_input_embeddings().weight) for e in self._encoders}

    def adaptable_layers(self) -> dict[str, torch.nn.Linear]:
        layers = {}
        for index, encoder in enumerate(self._encoders):
            prefix = text_encoder_prefix(index, len(self._encoders))
            for path, module in encoder.model.named_modules():
                if isinstance(module, torch.nn.Linear) and ".layers." in path:
                    # kohya names count from text_model, which transformers 5 no longer nests the layers in.
                    layers[prefix + "text_model_" + path.removeprefix("text_model.").replace(".", "_")] = module
        return layers

    def encode(self, prompts: Sequence[str], token: str, vectors: dict[str, torch.Tensor]) -> Conditioning:
        if isinstance(prompts, str):
            prompts = [prompts]
        check_word(token, vectors)
        check_fits_family(token, vectors, self._family)
        outputs = [encoder.run(prompts, token, vectors[encoder.name]) for encoder in self._encoders]
        if self._family != "sdxl":
            return Conditioning(context=outputs[0].last_hidden_state)
        # SDXL conditions on both encoders' penultimate layers side by side, and on clip_g's projected pooled
        # output (taken at the end marker).
        context = torch.cat([output.hidden_states[-2] for output in outputs], dim=-1)
        return Conditioning(context=context, pooled=outputs[-1].text_embeds)
