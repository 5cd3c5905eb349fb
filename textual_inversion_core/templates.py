"""Prompts the pseudo-word is trained in.

Neutral templates keep the word from absorbing anything but the concept itself: the object list is the one
the Textual Inversion paper took from CLIP's ImageNet prompts, the style list its counterpart for styles.
``[name]`` stands for the pseudo-word and ``[filewords]`` for an image's caption (AUTOMATIC1111's syntax).
"""

from __future__ import annotations

import random
import re

from .errors import ConfigError

OBJECT_TEMPLATES = (
    "a photo of a [name]",
    "a rendering of a [name]",
    "a cropped photo of the [name]",
    "the photo of a [name]",
    "a photo of a clean [name]",
    "a photo of a dirty [name]",
    "a dark photo of the [name]",
    "a photo of my [name]",
    "a photo of the cool [name]",
    "a close-up photo of a [name]",
    "a bright photo of the [name]",
    "a cropped photo of a [name]",
    "a photo of the [name]",
    "a good photo of the [name]",
    "a photo of one [name]",
    "a close-up photo of the [name]",
    "a rendition of the [name]",
    "a photo of the clean [name]",
    "a rendition of a [name]",
    "a photo of a nice [name]",
    "a good photo of a [name]",
    "a photo of the nice [name]",
    "a photo of the small [name]",
    "a photo of the weird [name]",
    "a photo of the large [name]",
    "a photo of a cool [name]",
    "a photo of a small [name]",
)

STYLE_TEMPLATES = (
    "a painting in the style of [name]",
    "a rendering in the style of [name]",
    "a cropped painting in the style of [name]",
    "the painting in the style of [name]",
    "a clean painting in the style of [name]",
    "a dirty painting in the style of [name]",
    "a dark painting in the style of [name]",
    "a picture in the style of [name]",
    "a cool painting in the style of [name]",
    "a close-up painting in the style of [name]",
    "a bright painting in the style of [name]",
    "a good painting in the style of [name]",
    "a close-up painting in the style of [name]",
    "a rendition in the style of [name]",
    "a nice painting in the style of [name]",
    "a small painting in the style of [name]",
    "a weird painting in the style of [name]",
    "a large painting in the style of [name]",
)

# Used for an image whose caption does not say where the word goes.
CAPTION_TEMPLATE = "[name], [filewords]"

TEMPLATE_KINDS = ("object", "style", "captions")

# How CLIP's tokenizer splits text before its byte-pair merges: letters, single digits, runs of punctuation.
_CLIP_PIECES = re.compile(r"[^\W\d_]+|\d|[^\w\s]+")


def check_template_kind(kind: str) -> None:
    if kind not in TEMPLATE_KINDS:
        raise ConfigError(f"template must be one of {', '.join(TEMPLATE_KINDS)}, got {kind!r}.")


def template_tokens(kind: str) -> int:
    """The most prompt tokens a template of ``kind`` spends besides the word (a caption's own words aside).

    CLIP's vocabulary holds every word of these templates as one token, so each piece counts one.
    """
    check_template_kind(kind)
    templates = {"object": OBJECT_TEMPLATES, "style": STYLE_TEMPLATES,
                 "captions": (CAPTION_TEMPLATE, OBJECT_TEMPLATES[0])}[kind]
    return max(len(_CLIP_PIECES.findall(t.replace("[name]", " ").replace("[filewords]", " "))) for t in templates)


class PromptTemplates:
    """Draws the training prompt for one image: a random neutral template, or the image's own caption."""

    def __init__(self, kind: str, token: str):
        check_template_kind(kind)
        self.kind = kind
        self.token = token

    def prompt(self, caption: str, rng: random.Random) -> str:
        if self.kind == "object":
            template = rng.choice(OBJECT_TEMPLATES)
        elif self.kind == "style":
            template = rng.choice(STYLE_TEMPLATES)
        elif "[name]" in caption or self.token in caption:
            template = caption
        elif caption.strip():
            template = CAPTION_TEMPLATE
        else:
            # An image without a caption still teaches the word, through the plainest object prompt.
            template = OBJECT_TEMPLATES[0]
        return template.replace("[filewords]", caption.strip()).replace("[name]", self.token)
