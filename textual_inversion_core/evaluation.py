"""The paper's two measures of a learned word, over pictures, whatever made them and whatever reads them.

*Reconstruction*: do pictures generated from "a photo of S*" resemble the concept's own pictures? The mean cosine
similarity of their features (the paper uses CLIP's image encoder), and the share a reader takes for the concept.
*Editability*: do pictures from prompts that change one thing ("a blue S*", "S* on a beach") show the change, and
do they still show the concept?

A feature extractor is any function from a ``[N, 3, H, W]`` batch in [0, 1] to ``[N, D]`` features; a reader any
function from such a batch to one ``{attribute: label}`` per picture. Nothing here knows a host or a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import torch

FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]
Reader = Callable[[torch.Tensor], list[Mapping[str, str]]]


def image_similarity(extract: FeatureExtractor, generated: torch.Tensor, references: torch.Tensor) -> float:
    """Mean cosine similarity between every generated picture's features and every reference picture's."""
    with torch.no_grad():
        a = torch.nn.functional.normalize(extract(generated).float(), dim=-1)
        b = torch.nn.functional.normalize(extract(references).float(), dim=-1)
    return float((a @ b.T).mean())


def self_similarity(extract: FeatureExtractor, pictures: torch.Tensor) -> float:
    """Mean cosine similarity between the features of different pictures of one set: how alike the concept's own
    pictures are, the most a generated picture can be expected to resemble them."""
    if len(pictures) < 2:
        raise ValueError("self_similarity needs at least two pictures")
    with torch.no_grad():
        f = torch.nn.functional.normalize(extract(pictures).float(), dim=-1)
    pairs = f @ f.T
    n = len(pictures)
    return float((pairs.sum() - pairs.diagonal().sum()) / (n * (n - 1)))


@dataclasses.dataclass(frozen=True)
class Reconstruction:
    """The paper's image-similarity score of a word, beside the init word's (the start) and the concept's own
    pictures' similarity among themselves (about the most to expect)."""

    similarity: float
    init_similarity: float
    concept_similarity: float | None  # None with a single concept picture
    generated: int
    concept_pictures: int

    def text(self) -> str:
        lines = [
            f"image similarity to the {self.concept_pictures} concept pictures, mean over {self.generated} "
            f"pictures each:",
            f"  with the word:      {self.similarity:.4f}",
            f"  with the init word: {self.init_similarity:.4f}   (the word gains {self.similarity - self.init_similarity:+.4f})",
        ]
        if self.concept_similarity is not None:
            lines.append(f"  the concept's own pictures among themselves: {self.concept_similarity:.4f}")
        return "\n".join(lines)


def score_reconstruction(extract: FeatureExtractor, generated: torch.Tensor, init_generated: torch.Tensor,
                         concept: torch.Tensor) -> Reconstruction:
    """``generated`` pictures made with the word and ``init_generated`` with the init word (the same prompts and
    seeds), against the ``concept``'s own pictures."""
    return Reconstruction(
        similarity=image_similarity(extract, generated, concept),
        init_similarity=image_similarity(extract, init_generated, concept),
        concept_similarity=self_similarity(extract, concept) if len(concept) > 1 else None,
        generated=len(generated), concept_pictures=len(concept),
    )


def share_showing(read: Reader, pictures: torch.Tensor, wanted: Mapping[str, str]) -> float:
    """The share of ``pictures`` in which the reader sees every attribute of ``wanted``."""
    if not wanted:
        raise ValueError("share_showing needs at least one attribute to look for")
    seen = read(pictures)
    return sum(all(s[k] == v for k, v in wanted.items()) for s in seen) / len(seen)


@dataclasses.dataclass(frozen=True)
class Edit:
    """A prompt that changes one thing about the concept: ``changes`` is what the pictures should then show,
    ``keeps`` what of the concept they should still show."""

    prompt: str
    changes: Mapping[str, str]
    keeps: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class EditScore:
    """One edit's pictures: the share showing the change, the share still showing the concept, and both. A word
    that swallows the prompt keeps the concept and loses the change; one that is swallowed, the other way round."""

    edited: float
    kept: float
    edited_and_kept: float


@dataclasses.dataclass(frozen=True)
class Scores:
    reconstruction: float  # image similarity to the concept's pictures
    recognised: float  # share read as the concept
    edited: float  # share of edited pictures showing the edit
    edited_and_kept: float  # ... and the concept too
    by_edit: Mapping[str, EditScore] = dataclasses.field(default_factory=dict)  # keyed by what the edit changes

    @property
    def editability(self) -> float:
        return self.edited_and_kept

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "editability": self.editability}


def edit_name(edit: Edit) -> str:
    """What an edit changes, as a key: "colour", "background", "shape+colour"."""
    return "+".join(sorted(edit.changes))


def score_word(
    generate: Callable[[str], torch.Tensor],
    reconstruction_prompt: str,
    concept: Mapping[str, str],
    edits: Sequence[Edit],
    concept_pictures: torch.Tensor,
    extract: FeatureExtractor,
    read: Reader,
) -> Scores:
    """The paper's measures for one way of asking for a concept: a pseudo-word, an init word, or a named concept
    written out in the model's own words.

    ``generate(prompt)`` returns the pictures for a prompt, the same seeds for every prompt; ``concept`` is what
    the reader should see in the pictures of ``reconstruction_prompt``.
    """
    made = generate(reconstruction_prompt)
    by_edit = {}
    for edit in edits:
        if edit_name(edit) in by_edit:
            raise ValueError(f"two edits change {edit_name(edit)}; give each edit its own change")
        pictures = generate(edit.prompt)
        by_edit[edit_name(edit)] = EditScore(
            edited=share_showing(read, pictures, edit.changes), kept=share_showing(read, pictures, edit.keeps),
            edited_and_kept=share_showing(read, pictures, {**edit.keeps, **edit.changes}))
    return Scores(
        reconstruction=image_similarity(extract, made, concept_pictures),
        recognised=share_showing(read, made, concept),
        edited=_mean(e.edited for e in by_edit.values()),
        edited_and_kept=_mean(e.edited_and_kept for e in by_edit.values()),
        by_edit=by_edit,
    )


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")
