"""The concept world: pictures and captions from a seed, concepts the captions never name, exams that change one
thing at a time, and a model built from it that the product loads like any local model."""

import dataclasses
import random

import numpy as np
import pytest
import torch

from textual_inversion_core.demo.vocabulary import WORDS as PROMPT_WORDS, build_vocabulary
from textual_inversion_core.demo.world.drawing import draw_scene
from textual_inversion_core.demo.world.exam import (
    ceiling_concept, concept_pictures, named_exam, recognised_by, truth, unreadable_edits, without_edits, word_exam,
    write_concept_folder,
)
from textual_inversion_core.demo.world.model import (
    Recipe, build_world_model, draw_judge_set, draw_training_set, is_built, load_judge,
)
from textual_inversion_core.demo.world.scenes import (
    BACKGROUNDS, COLOURS, SHAPES, STYLE_PHRASES, STYLES, WORDS, Scene, make_world,
)
from textual_inversion_core.data import load_concept_folder
from textual_inversion_core.evaluation import EditScore, Scores, edit_name
from textual_inversion_core.hosts.diffusers import load_diffusers_model
from textual_inversion_core.training import TrainingConfig, train_embedding


def captions(world, count=3000, seed=0):
    rng = random.Random(seed)
    return [(scene, world.caption(scene, rng)) for scene in (world.random_scene(rng) for _ in range(count))]


def test_the_world_is_large_enough_to_compose():
    # Given the world's vocabulary of things, then it has at least 8 shapes x 8 colours, 6 backgrounds, 3 styles
    assert len(SHAPES) >= 8 and len(COLOURS) >= 8 and len(BACKGROUNDS) >= 6 and len(STYLES) - 1 >= 3


def test_a_seed_draws_the_same_world_and_another_seed_another():
    # Given two worlds of one seed and one of another
    first, again, other = make_world(0), make_world(0), make_world(1)
    # Then the held-out concepts are the same for the same seed and differ for another
    assert first == again
    assert (first.held_out_shapes, first.held_out_style) != (other.held_out_shapes, other.held_out_style)
    # And a scene always gives the same pixels
    scene = first.random_scene(random.Random(5))
    assert np.array_equal(draw_scene(scene), draw_scene(scene))


def test_held_out_concepts_are_drawn_but_never_named():
    # Given many training pictures and their captions
    world = make_world(0)
    pairs = captions(world)
    shown = {s.shape for s, _ in pairs} | {s.style for s, _ in pairs}
    words = {w for _, c in pairs for w in c.split()}
    # Then the held-out shapes and style appear in the pictures
    assert set(world.held_out_shapes) <= shown and world.held_out_style in shown
    assert any(s.fill == "dotted" for s, _ in pairs)
    # But no caption names a held-out shape, nor the held-out style's phrase
    assert not set(world.held_out_shapes) & words
    held_out_phrase = STYLE_PHRASES[world.held_out_style]
    assert not any(c.startswith(held_out_phrase) for _, c in pairs)
    # And the patterned object is only ever "an object"
    assert all(" an object" in c for s, c in pairs if s.fill == "dotted")
    # While every named shape, colour and background is named somewhere
    assert set(world.named_shapes) | set(COLOURS) | set(BACKGROUNDS) <= words


def test_the_judge_sees_dots_in_every_colour_the_model_never_does():
    # Given the model's training pictures and the judge's, drawn for the same world
    world = make_world(0)
    scenes, pictures = draw_training_set(world, 300, seed=0)
    judge_scenes, judge_pictures = draw_judge_set(world, scenes, pictures, extra=200, seed=0)
    # Then the model's pictures show dots on the patterned object alone, in its own colours
    assert {(s.shape, s.colour, s.fill_colour) for s in scenes if s.fill == "dotted"} == \
        {(world.patterned.shape, world.patterned.colour, world.patterned.fill_colour)}
    # And the judge's hold the model's and, beyond them, dotted shapes in many colours
    assert torch.equal(judge_pictures[:300], pictures) and judge_scenes[:300] == scenes
    extra = judge_scenes[300:]
    assert all(s.fill == "dotted" and s.colour != s.fill_colour for s in extra)
    assert len({s.colour for s in extra}) == len(COLOURS) and len({s.shape for s in extra}) == len(SHAPES)
    assert judge_pictures.shape == (500, 3, 64, 64) and judge_pictures.dtype == torch.uint8


def test_every_caption_word_is_one_token_of_the_world_tokenizer():
    # Given the tokenizer's vocabulary over the prompt words and the world's words
    vocabulary, _ = build_vocabulary(list(dict.fromkeys(PROMPT_WORDS + WORDS)))
    # Then each word of every caption and every exam prompt is a whole token
    world = make_world(0)
    texts = [c for _, c in captions(world, 500)]
    for concept in world.concepts():
        texts += word_exam(world, concept, concept.init_word).prompts + named_exam(world, concept).prompts
    for word in {w for text in texts for w in text.split()}:
        assert word + "</w>" in vocabulary, word


def test_styles_change_the_whole_picture():
    # Given one scene in each style
    base = Scene(shape="star", colour="red", background="striped", seed=3)
    pictures = {style: draw_scene(Scene(**{**base.__dict__, "style": style})) for style in STYLES}
    # Then every style differs from the plain photo
    for style in STYLES[1:]:
        assert np.abs(pictures[style] - pictures["photo"]).mean() > 0.02, style
    # And "dark" and "faded" keep the star's hue (red its strongest channel) while darkening or lightening it all
    centre = (32, 32)
    for style in ("dark", "faded"):
        assert pictures[style][centre].argmax() == 0, style
    assert pictures["dark"].mean() < pictures["photo"].mean() - 0.15
    assert pictures["faded"].mean() > pictures["photo"].mean() + 0.1


@pytest.mark.parametrize("index", range(4))
def test_each_edit_changes_one_thing_and_keeps_the_concept(index):
    # Given a held-out concept's exam for a pseudo-word and its ceiling's exam in the model's own words
    world = make_world(0)
    concept = world.concepts()[index]
    exam, named = word_exam(world, concept, "<w>"), named_exam(world, concept)
    # Then every prompt of the word's exam holds the word, and the ceiling's holds no held-out name
    assert all("<w>" in p for p in exam.prompts)
    ceiling = ceiling_concept(world, concept)
    assert ceiling.shape not in world.held_out_shapes and ceiling.style != world.held_out_style
    assert not any(w in p.split() for p in named.prompts for w in world.held_out_shapes)
    # And the two exams ask for the same changes, each keeping what makes the concept itself
    assert [e.changes for e in exam.edits] == [e.changes for e in named.edits]
    assert all(e.keeps == recognised_by(concept) for e in exam.edits)
    # And the world's own drawings of each edit show exactly that change
    draw = truth(world, concept, exam, count=2)
    for edit in exam.edits:
        pictures = draw(edit.prompt)
        assert pictures.shape == (2, 3, 64, 64)
    assert not torch.equal(draw(exam.edits[0].prompt), concept_pictures(world, concept, 2, seed=1))


def test_an_edit_the_judge_cannot_read_on_the_worlds_own_drawings_is_left_out_of_every_exam():
    # Given a patterned object's exams, and the world's own drawings scored as the judge read them: the colour edit
    # never read as still the concept (the judge knows the dots in the object's own colour only)
    world = make_world(0)
    concept = next(c for c in world.concepts() if c.fill != "solid")
    truth_scores = Scores(reconstruction=0.9, recognised=1.0, edited=1.0, edited_and_kept=0.55, by_edit={
        "colour": EditScore(edited=1.0, kept=0.0, edited_and_kept=0.0),
        "background": EditScore(edited=1.0, kept=1.0, edited_and_kept=1.0),
        "style": EditScore(edited=1.0, kept=0.5, edited_and_kept=0.5)})
    # When the unreadable edits are taken out of the word's and the ceiling's exams
    unreadable = unreadable_edits(truth_scores)
    exams = [without_edits(word_exam(world, concept, "<w>"), unreadable),
             without_edits(named_exam(world, concept), unreadable)]
    # Then only the colour edit goes, from both, and the reconstruction prompt stays
    assert list(unreadable) == ["colour"]
    assert all([edit_name(e) for e in exam.edits] == ["background", "style"] for exam in exams)
    assert exams[0].reconstruction_prompt == word_exam(world, concept, "<w>").reconstruction_prompt


TINY = Recipe(pictures=96, judge_steps=3, judge_decoder_steps=3, vae_steps=3, vae_batch=4, unet_steps=3,
              unet_batch=4)


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    return build_world_model(TINY, tmp_path_factory.mktemp("world-cache"))


def test_the_world_model_is_built_once_and_cached_under_its_recipe(tiny_world, tmp_path_factory):
    # Given a built world model, then it is complete, and building it again returns the cached folder at once
    assert is_built(tiny_world)
    stamp = (tiny_world / "unet" / "config.json").stat().st_mtime_ns
    assert build_world_model(TINY, tiny_world.parent) == tiny_world
    assert (tiny_world / "unet" / "config.json").stat().st_mtime_ns == stamp
    # And another recipe has another key
    assert Recipe(unet_steps=4).key() != TINY.key()


def test_a_recipe_that_changes_only_the_unet_reuses_the_autoencoder(tiny_world, capfd):
    # Given a built world model, when a recipe that differs in its UNet alone is built beside it
    other = build_world_model(dataclasses.replace(TINY, unet_steps=4), tiny_world.parent)
    # Then the autoencoder was not trained again and is the same weights
    assert other != tiny_world and "vae " not in capfd.readouterr().err
    assert (other / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (tiny_world / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()


def test_the_product_trains_a_word_on_the_world_model(tiny_world, tmp_path):
    # Given the world model loaded by the product's own diffusers host and a held-out concept's pictures
    model = load_diffusers_model(tiny_world, device="cpu", dtype="float32")
    assert (model.family, model.pipeline.text_encoder.config.hidden_size) == ("sd1", 768)
    world = make_world(0)
    concept = world.concepts()[0]
    write_concept_folder(world, concept, tmp_path, count=3)
    pictures = load_concept_folder(tmp_path, 64)
    # When a word is trained for two steps from the concept's init word
    config = TrainingConfig(token="<c>", init_text=concept.init_word, steps=2)
    result = train_embedding(model.frozen_model(), pictures, config)
    # Then it has one 768-wide vector, and the judge built with the model reads the world's pictures
    assert result.embedding.vectors["clip_l"].shape == (1, 768)
    read = load_judge(tiny_world).read(concept_pictures(world, concept, 2))
    assert set(read[0]) == {"shape", "colour", "background", "style", "fill"}


def test_a_briefly_trained_judge_reads_colours_and_backgrounds_far_above_chance():
    # Given a judge trained for 100 steps on 400 of the world's pictures
    from textual_inversion_core.demo.world.judge import judge_accuracy, train_judge
    from textual_inversion_core.demo.world.model import draw_training_set
    world = make_world(0)
    scenes, pictures = draw_training_set(world, 400, seed=0)
    judge = train_judge(pictures, scenes, steps=100, batch=32)
    # Then on fresh pictures it reads colour and background at least twice as often as chance (1/8 and 1/6)
    accuracy = judge_accuracy(judge, world, count=128)
    assert accuracy["colour"] > 0.5 and accuracy["background"] > 2 / 6, accuracy
    # And its features are the 128 numbers the similarity measure compares
    assert judge.features(pictures[:2].float() / 255).shape == (2, 128)
