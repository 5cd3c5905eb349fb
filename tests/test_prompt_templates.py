"""Prompt templates: the sentences the pseudo-word is trained in."""

import random

import pytest

from textual_inversion_core.templates import OBJECT_TEMPLATES, STYLE_TEMPLATES, PromptTemplates


def test_object_prompts_are_the_papers_neutral_templates_with_the_token():
    templates = PromptTemplates("object", "<my-cat>")
    rng = random.Random(0)
    prompts = {templates.prompt("ignored caption", rng) for _ in range(300)}
    assert prompts == {t.replace("[name]", "<my-cat>") for t in OBJECT_TEMPLATES}
    assert "a photo of a <my-cat>" in prompts


def test_style_prompts_speak_of_the_style_of_the_token():
    templates = PromptTemplates("style", "<my-style>")
    rng = random.Random(0)
    prompts = {templates.prompt("", rng) for _ in range(300)}
    assert prompts == {t.replace("[name]", "<my-style>") for t in STYLE_TEMPLATES}
    assert all("style of <my-style>" in p for p in prompts)


def test_captions_mode_places_the_token_where_the_caption_says():
    templates = PromptTemplates("captions", "<x>")
    rng = random.Random(0)
    assert templates.prompt("[name] sleeping on a sofa", rng) == "<x> sleeping on a sofa"
    assert templates.prompt("a <x> on the beach", rng) == "a <x> on the beach"


def test_captions_mode_prefixes_the_token_to_a_plain_caption_and_falls_back_without_one():
    templates = PromptTemplates("captions", "<x>")
    rng = random.Random(0)
    assert templates.prompt("  a cat on a sofa ", rng) == "<x>, a cat on a sofa"
    assert templates.prompt("", rng) == "a photo of a <x>"


def test_an_unknown_template_kind_is_refused():
    with pytest.raises(ValueError, match="object, style, captions"):
        PromptTemplates("portrait", "<x>")
