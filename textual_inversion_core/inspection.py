"""What an embedding's vectors are, read against a model's vocabulary: their length beside the vocabulary's typical
token, the words they lie nearest, the family they fit, and where a prompt puts the word.

The analysis is the same for every host; each host supplies the vocabulary (its tokenizer's words and its text
encoder's token-embedding table) and, where it can tokenize a prompt with the word applied, the word's place in it.
``inspect_embedding`` gathers it all into one report, shown as text or as plain data.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import torch

from .embedding import Embedding, EmbeddingError
from .families import MAX_VECTORS, display_name, family_of
from .formats import describe_embedding

NEAREST = 5  # nearest vocabulary words listed per vector
# CLIP's byte-pair vocabulary marks a token that ends a word; shown without it, "cat</w>" reads as "cat".
WORD_END = "</w>"


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """One text encoder's token embeddings: ``table`` row ``i`` is the vector of ``words[i]``."""

    table: torch.Tensor  # [vocabulary size, width]
    words: Mapping[int, str]


@dataclasses.dataclass(frozen=True)
class NearWord:
    word: str
    cosine: float


@dataclasses.dataclass(frozen=True)
class VectorReport:
    norm: float
    norm_to_median: float | None  # against the vocabulary's median token norm; None without a vocabulary
    nearest: tuple[NearWord, ...]  # best first; empty without a vocabulary


@dataclasses.dataclass(frozen=True)
class EncoderReport:
    median_token_norm: float | None
    vectors: tuple[VectorReport, ...]


@dataclasses.dataclass(frozen=True)
class WordSlot:
    """Where one of the word's vectors sits in a tokenized prompt: chunk and position from 1, its row from 0."""

    chunk: int
    position: int  # 1-75: the chunk's prompt tokens, after its start marker
    row: int


@dataclasses.dataclass(frozen=True)
class PromptPlacement:
    """How a prompt tokenizes with the word applied. A CLIP prompt is encoded in chunks of 77 tokens: a start
    marker, 75 prompt tokens and an end marker; a longer prompt takes more chunks."""

    prompt: str
    tokens_per_chunk: tuple[int, ...]  # the prompt tokens in each chunk, at most 75
    word_slots: tuple[WordSlot, ...]  # in prompt order; empty when the word is not in the prompt

    @property
    def found(self) -> bool:
        return bool(self.word_slots)

    def occurrences(self) -> list[list[WordSlot]]:
        """The word's slots, one list per time it occurs (each starts again at its first vector)."""
        found: list[list[WordSlot]] = []
        for slot in self.word_slots:
            if slot.row == 0 or not found:
                found.append([])
            found[-1].append(slot)
        return found


@dataclasses.dataclass(frozen=True)
class EmbeddingReport:
    description: dict[str, Any]  # describe_embedding's summary: token, family, vectors, widths, metadata
    encoders: dict[str, EncoderReport]
    model_fit: str | None  # why the embedding does not fit the model inspected against; None if it fits or no model
    prompt: PromptPlacement | None

    def as_dict(self) -> dict[str, Any]:
        """Plain data, ready for ``json.dumps``."""
        return {
            **self.description,
            "encoders": {name: dataclasses.asdict(report) for name, report in self.encoders.items()},
            "model_fit": self.model_fit,
            "prompt": None if self.prompt is None else {
                **dataclasses.asdict(self.prompt), "found": self.prompt.found,
            },
        }

    def text(self) -> str:
        d = self.description
        widths = ", ".join(f"{name} {width}" for name, width in d["widths"].items())
        lines = [f"{d['token']}: {d['num_vectors']} vector{'s' * (d['num_vectors'] != 1)} per text encoder, "
                 f"for {display_name(d['family'])} ({widths})"]
        if self.model_fit:
            lines.append(f"does not fit this model: {self.model_fit}")
        for name, encoder in self.encoders.items():
            median = encoder.median_token_norm
            scale = "" if median is None else f" (the vocabulary's median token norm is {median:.3g})"
            lines.append(name + scale)
            for index, vector in enumerate(encoder.vectors, 1):
                line = f"  vector {index}: norm {vector.norm:.3g}"
                if vector.norm_to_median is not None:
                    line += f" ({vector.norm_to_median:.2f}x the median)"
                if vector.nearest:
                    line += "; nearest words " + ", ".join(f"{w.word} {w.cosine:.2f}" for w in vector.nearest)
                lines.append(line)
        if self.prompt is not None:
            lines += placement_lines(self.prompt, d["token"], d["num_vectors"])
        if d["metadata"]:
            lines.append("metadata:")
            lines += [f"  {key}: {value}" for key, value in sorted(d["metadata"].items())]
        return "\n".join(lines)


def readable_word(token: str) -> str:
    return token[: -len(WORD_END)] if token.endswith(WORD_END) and len(token) > len(WORD_END) else token


def median_token_norm(vocabulary: Vocabulary) -> float:
    return median_row_norm(vocabulary.table)


def median_row_norm(table: torch.Tensor) -> float:
    """The median norm of a token-embedding table's rows: the size of a typical word."""
    return table.detach().float().norm(dim=1).median().item()


def nearest_words(vectors: torch.Tensor, vocabulary: Vocabulary, count: int = NEAREST) -> list[list[NearWord]]:
    """For each row of ``vectors``, the ``count`` vocabulary words of highest cosine similarity, best first."""
    table = torch.nn.functional.normalize(vocabulary.table.float(), dim=1)
    rows = torch.nn.functional.normalize(vectors.float().to(table.device), dim=1)
    best = (rows @ table.T).topk(min(count, table.shape[0]), dim=1)
    return [
        [NearWord(readable_word(vocabulary.words.get(i, f"#{i}")), round(c, 4)) for c, i in zip(cos, ids)]
        for cos, ids in zip(best.values.tolist(), best.indices.tolist())
    ]


def encoder_report(vectors: torch.Tensor, vocabulary: Vocabulary | None) -> EncoderReport:
    norms = vectors.float().norm(dim=1).tolist()
    if vocabulary is None:
        return EncoderReport(None, tuple(VectorReport(round(n, 4), None, ()) for n in norms))
    median = median_token_norm(vocabulary)
    return EncoderReport(round(median, 4), tuple(
        VectorReport(round(n, 4), round(n / median, 3), tuple(near))
        for n, near in zip(norms, nearest_words(vectors, vocabulary))
    ))


def model_fit(embedding: Embedding, encoders: Sequence[str]) -> str | None:
    """Why ``embedding`` cannot be used with a model of these text encoders; None when it can."""
    family = family_of(encoders)
    if family is None:
        return (f"the model's text encoders ({', '.join(sorted(encoders))}) are not those of a family this "
                f"project knows; the embedding has {', '.join(embedding.vectors)}.")
    try:
        embedding.check_family(family)
    except EmbeddingError as error:
        return str(error)
    return None


def inspect_embedding(embedding: Embedding, vocabularies: Mapping[str, Vocabulary] | None = None,
                      prompt: PromptPlacement | None = None) -> EmbeddingReport:
    """The report on ``embedding``; with a model's ``vocabularies`` (by encoder name) its vectors are read
    against them, encoder by encoder where both have the encoder."""
    return EmbeddingReport(
        description=describe_embedding(embedding),
        encoders={name: encoder_report(vectors, (vocabularies or {}).get(name))
                  for name, vectors in embedding.vectors.items()},
        model_fit=None if vocabularies is None else model_fit(embedding, list(vocabularies)),
        prompt=prompt,
    )


def placement_lines(placement: PromptPlacement, token: str, num_vectors: int) -> list[str]:
    used = sum(placement.tokens_per_chunk)
    chunks = len(placement.tokens_per_chunk)
    lines = [f"prompt {placement.prompt!r}: {used} of {MAX_VECTORS} tokens" if chunks == 1 else
             f"prompt {placement.prompt!r}: {used} tokens, more than {MAX_VECTORS}, so it is encoded in {chunks} "
             f"chunks of 77 ({' + '.join(map(str, placement.tokens_per_chunk))} tokens)"]
    if not placement.found:
        lines.append(f"  {token} is not in the prompt: write it as a word of its own, e.g. 'a photo of {token}'")
    for occurrence in placement.occurrences():
        spans = []
        for chunk in dict.fromkeys(slot.chunk for slot in occurrence):
            positions = [slot.position for slot in occurrence if slot.chunk == chunk]
            span = f"{positions[0]}" if len(positions) == 1 else f"{positions[0]}-{positions[-1]}"
            spans.append(f"token{'s' * (len(positions) > 1)} {span} of chunk {chunk}")
        its = "its vector is" if num_vectors == 1 else f"its {num_vectors} vectors are"
        line = f"  {token} found: {its} " + " and ".join(spans)
        if len(spans) > 1:
            line += " (split across chunks, which are encoded apart)"
        lines.append(line)
    return lines
