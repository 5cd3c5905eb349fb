"""What the world's pictures show and how they are captioned: shapes, colours, backgrounds and picture-wide styles,
and the concepts the captions never name.

A world is drawn from a seed: the seed decides which shapes, which patterned object and which style are held out
(drawn in the training pictures, captioned only generically), so ``--seed`` gives other concepts to learn.
"""

from __future__ import annotations

import dataclasses
import random

SHAPES = ("circle", "square", "triangle", "star", "ring", "cross", "diamond", "hexagon", "heart", "moon")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
BACKGROUNDS = ("plain", "striped", "checked", "dotted", "gradient", "grid")
# The first is the unstyled picture; each style has the words that caption it.
# Every style changes what a 4x latent grid keeps (palette, edges, 4-pixel blocks): a per-pixel grain did not
# survive the autoencoder, so a word could not have asked for it.
# An inverted palette was tried: asked for "an inverted photo of a red star", the world model had to draw a cyan
# one, a colour that two words decide together, and it drew a red one (65 % of inverted prompts read as photos).
STYLES = ("photo", "outline", "pixelated", "faded", "dark")
STYLE_PHRASES = {
    "photo": "a photo of",
    "outline": "an outline drawing of",
    "pixelated": "a pixelated image of",
    "faded": "a faded photo of",
    "dark": "a dark photo of",
}
# The phrase a picture is captioned with when its style goes unnamed: every style, named or not, is sometimes
# captioned so, lest the generic phrase itself come to mean the held-out style.
GENERIC_PHRASE = "a picture of"
FILLS = ("solid", "dotted")
# The label sets the judge reads, in a fixed order.
ATTRIBUTES = {"shape": SHAPES, "colour": COLOURS, "background": BACKGROUNDS, "style": STYLES, "fill": FILLS}

WORDS = sorted(
    set(SHAPES) | set(COLOURS) | set(BACKGROUNDS)
    | {w for phrase in (*STYLE_PHRASES.values(), GENERIC_PHRASE) for w in phrase.split()}
    | {"a", "an", "on", "background", "object", "with", "dots"}
)


@dataclasses.dataclass(frozen=True)
class Scene:
    """One picture's content; ``named`` says whether its caption may name its shape and colour."""

    shape: str
    colour: str
    background: str
    style: str = "photo"
    fill: str = "solid"
    fill_colour: str = "white"
    x: float = 0.5  # the shape's centre, as a share of the picture's width and height
    y: float = 0.5
    size: float = 0.3  # the shape's radius, as a share of the picture's side
    tone: float = 0.5  # the background's grey level
    seed: int = 0  # the pattern's phase, the grain


@dataclasses.dataclass(frozen=True)
class Concept:
    """A held-out concept: an object (one shape, colour and fill) or a style."""

    name: str  # a file-safe name, e.g. "moon"
    kind: str  # "object" or "style"
    shape: str | None = None
    colour: str | None = None
    fill: str = "solid"
    fill_colour: str = "white"
    style: str | None = None

    @property
    def init_word(self) -> str:
        return "object" if self.kind == "object" else "picture"

    @property
    def template(self) -> str:
        return self.kind


@dataclasses.dataclass(frozen=True)
class World:
    """The world a seed draws: which shapes, which patterned object and which style its captions never name."""

    seed: int
    held_out_shapes: tuple[str, ...]
    patterned: Concept
    held_out_style: str

    @property
    def named_shapes(self) -> tuple[str, ...]:
        return tuple(s for s in SHAPES if s not in self.held_out_shapes)

    @property
    def named_styles(self) -> tuple[str, ...]:
        return tuple(s for s in STYLES if s != self.held_out_style)

    def concepts(self) -> list[Concept]:
        """The concepts textual inversion is asked to learn: each held-out shape in one colour, the patterned
        object, and the held-out style."""
        rng = random.Random(f"concepts-{self.seed}")
        colours = rng.sample(COLOURS[:6], len(self.held_out_shapes))
        objects = [Concept(name=shape, kind="object", shape=shape, colour=colour)
                   for shape, colour in zip(self.held_out_shapes, colours)]
        return objects + [self.patterned, Concept(name=self.held_out_style, kind="style", style=self.held_out_style)]

    def random_scene(self, rng: random.Random) -> Scene:
        """A training picture's content: mostly named shapes, sometimes held-out ones or the patterned object."""
        draw = rng.random()
        style = "photo" if rng.random() < 0.4 else rng.choice(STYLES[1:])
        common = dict(background=rng.choice(BACKGROUNDS), style=style, **_placement(rng))
        if draw < 0.06:
            p = self.patterned
            return Scene(shape=p.shape, colour=p.colour, fill=p.fill, fill_colour=p.fill_colour, **common)
        shapes = self.held_out_shapes if draw < 0.2 else self.named_shapes
        return Scene(shape=rng.choice(shapes), colour=rng.choice(COLOURS), **common)

    def judge_scene(self, rng: random.Random) -> Scene:
        """A picture for the judge alone: any shape, dotted in any two colours. The model's pictures show dots
        only on the patterned object, in its own colours, and a judge that saw no others read every orange dotted
        ring the world draws as solid."""
        scene = self.random_scene(rng)
        colour, dots = rng.sample(COLOURS, 2)
        return dataclasses.replace(scene, shape=rng.choice(SHAPES), colour=colour, fill="dotted", fill_colour=dots)

    def caption(self, scene: Scene, rng: random.Random) -> str:
        """Words for a picture, as the world model learns them. Parts are left out at random, so that short
        prompts ("a photo of a red star") are as familiar as whole ones."""
        named_style = scene.style != self.held_out_style and rng.random() < 0.7
        phrase = STYLE_PHRASES[scene.style] if named_style else GENERIC_PHRASE
        if scene.fill != "solid":
            thing = "an object"
        elif scene.shape in self.held_out_shapes:
            thing = with_article(f"{scene.colour} object" if rng.random() < 0.85 else "object")
        else:
            thing = with_article(f"{scene.colour} {scene.shape}" if rng.random() < 0.85 else scene.shape)
        where = f" on a {scene.background} background" if rng.random() < 0.7 else ""
        return f"{phrase} {thing}{where}"

    def concept_scene(self, concept: Concept, rng: random.Random, **attributes) -> Scene:
        """A picture of ``concept`` (placed and backed at random unless ``attributes`` say otherwise)."""
        if concept.kind == "style":
            base = dict(shape=rng.choice(self.named_shapes), colour=rng.choice(COLOURS),
                        background=rng.choice(BACKGROUNDS), style=concept.style)
        else:
            base = dict(shape=concept.shape, colour=concept.colour, fill=concept.fill, fill_colour=concept.fill_colour,
                        background=rng.choice(BACKGROUNDS), style="photo")
        return Scene(**{**base, **_placement(rng), **attributes})


def with_article(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


def _placement(rng: random.Random) -> dict:
    # Near the middle: with the shape anywhere in the picture, a world model of the size this machine builds drew
    # ragged blobs from noise (it refined a shape noised halfway into a clean one, so it knew the shapes but could
    # not settle where a shape's outline goes).
    size = rng.uniform(0.24, 0.34)
    return dict(x=rng.uniform(0.4, 0.6), y=rng.uniform(0.4, 0.6), size=size,
                tone=rng.uniform(0.35, 0.6), seed=rng.randrange(1 << 30))


def make_world(seed: int = 0) -> World:
    """The world of ``seed``: two held-out shapes, one patterned object of a named shape, one held-out style."""
    rng = random.Random(f"world-{seed}")
    held_out = tuple(rng.sample(SHAPES, 2))
    named = [s for s in SHAPES if s not in held_out]
    colour, dots = rng.sample(COLOURS[:6], 2)
    shape = rng.choice(named)
    patterned = Concept(name=f"dotted-{shape}", kind="object", shape=shape, colour=colour, fill="dotted",
                        fill_colour=dots)
    return World(seed=seed, held_out_shapes=held_out, patterned=patterned, held_out_style=rng.choice(STYLES[1:]))
