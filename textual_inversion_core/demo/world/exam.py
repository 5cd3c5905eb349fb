"""What a word for a held-out concept is asked to draw, and how the judge marks it.

A concept is examined the paper's way: one reconstruction prompt ("a photo of a S*") and edits that each change
one thing ("a photo of a blue S*", "... on a checked background", "an outline drawing of a S*"). The same exam
is set, in its own words, to the init word (the start), to a named concept of the same kind (the ceiling: the
best a word can do on this model) and to the world's own drawings of each prompt (the truth).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import torch

from ...embedding import Embedding
from ...evaluation import Edit, EditScore, Scores, edit_name, score_word
from .drawing import draw_scene, scene_mask, to_image
from .judge import Judge
from .scenes import BACKGROUNDS, COLOURS, STYLE_PHRASES, Concept, Scene, World, with_article

EDIT_BACKGROUND = "checked"
SAMPLES = 16  # pictures per prompt, seeds 0..15 for every prompt
# An edit counts only if the judge reads at least this share of the world's own drawings of it as changed and
# still the concept: below it, the judge is what fails.
READABLE = 0.5
SAMPLER_STEPS = 15
GUIDANCE = 4.0


@dataclasses.dataclass(frozen=True)
class Exam:
    """One way of asking for a concept: its prompts and what the judge should see in each."""

    reconstruction_prompt: str
    concept: dict[str, str]
    edits: tuple[Edit, ...]

    @property
    def prompts(self) -> list[str]:
        return [self.reconstruction_prompt] + [edit.prompt for edit in self.edits]

    def changes(self, prompt: str) -> dict[str, str]:
        """What ``prompt`` asks to change about the concept (nothing for the reconstruction prompt)."""
        for edit in self.edits:
            if edit.prompt == prompt:
                return dict(edit.changes)
        return {}


def recognised_by(concept: Concept) -> dict[str, str]:
    """What the judge must read in a picture to count it as ``concept``."""
    if concept.kind == "style":
        return {"style": concept.style}
    return {"shape": concept.shape, **({"fill": concept.fill} if concept.fill != "solid" else {})}


def _other_colour(concept: Concept, world: World) -> str:
    rng = random.Random(f"edit-colour-{world.seed}-{concept.name}")
    return rng.choice([c for c in COLOURS[:6] if c != concept.colour])


def _edit_style(world: World) -> str:
    return next(s for s in world.named_styles if s != "photo")


def _edit_shapes(world: World, concept: Concept) -> tuple[str, str]:
    rng = random.Random(f"edit-shapes-{world.seed}-{concept.name}")
    first, second = rng.sample(world.named_shapes, 2)
    return first, second


def word_exam(world: World, concept: Concept, word: str) -> Exam:
    """The exam for ``word`` standing for the whole concept (a learned pseudo-word, or the init word)."""
    keeps = recognised_by(concept)
    if concept.kind == "object":
        colour, style = _other_colour(concept, world), _edit_style(world)
        return Exam(f"a photo of a {word}", keeps, (
            Edit(f"a photo of a {colour} {word}", {"colour": colour}, keeps),
            Edit(f"a photo of a {word} on a {EDIT_BACKGROUND} background", {"background": EDIT_BACKGROUND}, keeps),
            Edit(f"{STYLE_PHRASES[style]} a {word}", {"style": style}, keeps),
        ))
    shape, other = _edit_shapes(world, concept)
    colour = _other_colour(concept, world)
    return Exam(f"a picture in the style of {word}", keeps, (
        Edit(f"a picture of {with_article(f'{colour} {shape}')} in the style of {word}",
             {"shape": shape, "colour": colour}, keeps),
        Edit(f"a picture of {with_article(other)} on a {EDIT_BACKGROUND} background in the style of {word}",
             {"shape": other, "background": EDIT_BACKGROUND}, keeps),
    ))


def unreadable_edits(truth_scores: Scores) -> dict[str, EditScore]:
    """The edits the judge cannot read on the world's own drawings of them (``sit_truth``'s scores). Build 13's
    judge read the patterned ring's dots only in the ring's own colour, so "an orange S*" could never count as
    kept, whatever drew it. A score on such an edit measures the judge, not the word."""
    return {kind: edit for kind, edit in truth_scores.by_edit.items() if edit.edited_and_kept < READABLE}


def without_edits(exam: Exam, kinds) -> Exam:
    """``exam`` without the edits that change ``kinds`` (``edit_name``'s keys)."""
    return dataclasses.replace(exam, edits=tuple(e for e in exam.edits if edit_name(e) not in kinds))


def ceiling_concept(world: World, concept: Concept) -> Concept:
    """A concept of the same kind that the model has words for: a named shape in the same colour, or a named
    style."""
    if concept.kind == "style":
        style = next(s for s in reversed(world.named_styles) if s != "photo")
        return Concept(name=style, kind="style", style=style)
    rng = random.Random(f"ceiling-{world.seed}-{concept.name}")
    shape = rng.choice(world.named_shapes)
    return Concept(name=shape, kind="object", shape=shape, colour=concept.colour)


def named_exam(world: World, concept: Concept) -> Exam:
    """The exam of ``concept``'s ceiling, written in the model's own words: the same edits as ``word_exam``."""
    named = ceiling_concept(world, concept)
    keeps = recognised_by(named)
    edits = word_exam(world, concept, "S").edits
    if concept.kind == "object":
        thing = f"{named.colour} {named.shape}"
        colour_edit, background_edit, style_edit = edits
        colour, style = colour_edit.changes["colour"], style_edit.changes["style"]
        return Exam(f"a photo of {with_article(thing)}", keeps, (
            Edit(f"a photo of {with_article(f'{colour} {named.shape}')}", colour_edit.changes, keeps),
            Edit(f"a photo of {with_article(thing)} on a {EDIT_BACKGROUND} background", background_edit.changes,
                 keeps),
            Edit(f"{STYLE_PHRASES[style]} {with_article(thing)}", style_edit.changes, keeps),
        ))
    phrase = STYLE_PHRASES[named.style]
    object_edit, background_edit = edits
    shape, colour = object_edit.changes["shape"], object_edit.changes["colour"]
    other = background_edit.changes["shape"]
    return Exam(f"{phrase} an object", keeps, (
        Edit(f"{phrase} {with_article(f'{colour} {shape}')}", object_edit.changes, keeps),
        Edit(f"{phrase} {with_article(other)} on a {EDIT_BACKGROUND} background", background_edit.changes, keeps),
    ))


def concept_scenes(world: World, concept: Concept, count: int = 5, seed: int = 0, **changes: str) -> list[Scene]:
    """``count`` scenes of ``concept`` (with ``changes``), the same for the same arguments."""
    rng = random.Random(f"concept-{world.seed}-{concept.name}-{seed}-{sorted(changes.items())}")
    return [world.concept_scene(concept, rng, **changes) for _ in range(count)]


def concept_pictures(world: World, concept: Concept, count: int = 5, seed: int = 0,
                     **changes: str) -> torch.Tensor:
    """``count`` of the world's own drawings of ``concept`` (with ``changes``), ``[N, 3, 64, 64]`` in [0, 1]."""
    return _drawn(concept_scenes(world, concept, count, seed, **changes))


def _drawn(scenes: list[Scene]) -> torch.Tensor:
    pictures = [draw_scene(scene) for scene in scenes]
    return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).contiguous()


def write_concept_folder(world: World, concept: Concept, folder: Path, count: int = 5, masks: bool = False,
                         **changes: str) -> torch.Tensor:
    """The concept's pictures (``concept_pictures``, with ``changes``) as PNG files in ``folder``, as a user would
    hand them to a trainer, with ``name.mask.png`` (the shape's coverage) beside each if ``masks``; returns the same
    pictures as a batch."""
    scenes = concept_scenes(world, concept, count, 0, **changes)
    pictures = _drawn(scenes)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (scene, picture) in enumerate(zip(scenes, pictures)):
        to_image(picture.permute(1, 2, 0).numpy()).save(folder / f"{concept.name}-{i}.png")
        if masks:
            to_image(np.repeat(scene_mask(scene)[..., None], 3, axis=2)).save(folder / f"{concept.name}-{i}.mask.png")
    return pictures


def truth(world: World, concept: Concept, exam: Exam, count: int, seed: int = 1):
    """The world's own answer to each of the exam's prompts: a ``generate(prompt)`` that draws rather than
    samples."""
    def generate(prompt: str) -> torch.Tensor:
        return concept_pictures(world, concept, count, seed, **exam.changes(prompt))
    return generate


def model_answers(model, embedding: Embedding, count: int = SAMPLES, steps: int = SAMPLER_STEPS,
                  guidance: float = GUIDANCE):
    """A ``render(prompts) -> {prompt: pictures}`` through the diffusers host's sampler, ``count`` seeds per
    prompt (the same seeds for every prompt and every word), with ``embedding``'s token usable in the prompts."""
    def render(prompts: list[str]) -> dict[str, torch.Tensor]:
        pictures = model.render_pictures(embedding, [p for p in prompts for _ in range(count)],
                                         list(range(count)) * len(prompts), steps=steps, guidance_scale=guidance)
        return dict(zip(prompts, pictures.split(count)))
    return render


def sit(exam: Exam, render, concept_pictures: torch.Tensor, judge: Judge) -> Scores:
    """The paper's measures for one exam, all its prompts rendered in one batch."""
    answers = render(exam.prompts)
    return score_word(answers.__getitem__, exam.reconstruction_prompt, exam.concept, exam.edits, concept_pictures,
                      judge.features, judge.read)


def sit_truth(world: World, concept: Concept, exam: Exam, concept_pictures: torch.Tensor, judge: Judge,
              count: int = SAMPLES) -> Scores:
    """The same measures for the world's own drawings of the exam's prompts."""
    return score_word(truth(world, concept, exam, count), exam.reconstruction_prompt, exam.concept, exam.edits,
                      concept_pictures, judge.features, judge.read)


def read_back(model, embedding: Embedding, judge: Judge, world: World, count: int = 96,
              seed: int = 0) -> dict[str, float]:
    """How well the model draws what it has words for: pictures for fully named prompts ("a grainy photo of a red
    star on a dotted background"), and the share of each named attribute the judge reads back."""
    rng = random.Random(f"read-back-{seed}")
    wanted = []
    for _ in range(count):
        wanted.append({"shape": rng.choice(world.named_shapes), "colour": rng.choice(COLOURS),
                       "background": rng.choice(BACKGROUNDS), "style": rng.choice(world.named_styles)})
    prompts = [f"{STYLE_PHRASES[w['style']]} {with_article(w['colour'] + ' ' + w['shape'])} on a "
               f"{w['background']} background" for w in wanted]
    batches = [range(i, min(i + 32, count)) for i in range(0, count, 32)]
    pictures = torch.cat([model.render_pictures(embedding, [prompts[j] for j in batch], list(batch),
                                                steps=SAMPLER_STEPS, guidance_scale=GUIDANCE) for batch in batches])
    seen = judge.read(pictures)
    return {name: sum(s[name] == w[name] for s, w in zip(seen, wanted)) / count for name in wanted[0]}
