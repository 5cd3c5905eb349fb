"""The paper's two measures, over any pictures, any feature extractor and any reader."""

import pytest
import torch

from textual_inversion_core.evaluation import (
    Edit, EditScore, image_similarity, score_reconstruction, score_word, self_similarity, share_showing,
)


def flat(colour, count=4):
    """Pictures of one flat colour: ``colour`` is an RGB triple in [0, 1]."""
    return torch.tensor(colour).view(1, 3, 1, 1).expand(count, 3, 8, 8).clone()


def mean_colour(pictures):
    return pictures.mean(dim=(2, 3))


def read_colour(pictures):
    names = {0: "red", 1: "green", 2: "blue"}
    return [{"colour": names[int(p.argmax())], "bright": "yes" if p.sum() > 1.2 else "no"}
            for p in mean_colour(pictures)]


def test_similarity_is_one_for_the_same_pictures_and_zero_for_orthogonal_features():
    red, green = flat((1.0, 0, 0)), flat((0, 1.0, 0))
    assert image_similarity(mean_colour, red, red) == pytest.approx(1.0)
    assert image_similarity(mean_colour, red, green) == pytest.approx(0.0)
    # And a mixed set scores between
    assert image_similarity(mean_colour, torch.cat([red, green]), red) == pytest.approx(0.5)


def test_a_picture_counts_only_when_it_shows_everything_wanted():
    pictures = torch.cat([flat((0.9, 0.5, 0.0), 1), flat((0.9, 0.1, 0.0), 3)])
    assert share_showing(read_colour, pictures, {"colour": "red"}) == 1.0
    assert share_showing(read_colour, pictures, {"colour": "red", "bright": "yes"}) == 0.25
    with pytest.raises(ValueError):
        share_showing(read_colour, pictures, {})


def test_editability_needs_the_edit_and_the_concept_together():
    # Given a "word" for bright red whose edit to blue loses the brightness
    answers = {"a S": flat((0.9, 0.5, 0.0)), "a blue S": flat((0.0, 0.1, 0.6))}
    edit = Edit("a blue S", changes={"colour": "blue"}, keeps={"bright": "yes"})
    scores = score_word(answers.__getitem__, "a S", {"colour": "red", "bright": "yes"}, [edit],
                        flat((1.0, 0.6, 0.0)), mean_colour, read_colour)
    # Then it reconstructs and is recognised, shows the edit, but not the edit with the concept kept
    assert scores.reconstruction > 0.99 and scores.recognised == 1.0
    assert scores.edited == 1.0 and scores.editability == 0.0
    # And the edit's own figures say which was lost: the concept, not the change
    assert scores.by_edit["colour"] == EditScore(edited=1.0, kept=0.0, edited_and_kept=0.0)


def test_each_edit_is_scored_under_what_it_changes():
    # Given a word for a dim red that follows a colour edit but swallows a brightness edit
    answers = {"a S": flat((0.9, 0.1, 0.0)), "a blue S": flat((0.0, 0.1, 0.6)), "a bright S": flat((0.9, 0.1, 0.0))}
    edits = [Edit("a blue S", {"colour": "blue"}, {"bright": "no"}),
             Edit("a bright S", {"bright": "yes"}, {"colour": "red"})]
    scores = score_word(answers.__getitem__, "a S", {"colour": "red", "bright": "no"}, edits, flat((1.0, 0, 0)), mean_colour,
                        read_colour)
    # Then each edit has its own row, and the summary is their mean
    assert scores.by_edit["colour"].edited_and_kept == 1.0
    assert scores.by_edit["bright"] == EditScore(edited=0.0, kept=1.0, edited_and_kept=0.0)
    assert scores.editability == 0.5
    # And two edits of the same thing cannot share a row
    with pytest.raises(ValueError, match="two edits change colour"):
        score_word(answers.__getitem__, "a S", {"colour": "red", "bright": "no"}, [edits[0], edits[0]], flat((1.0, 0, 0)),
                   mean_colour, read_colour)


def test_the_reconstruction_score_sets_the_word_beside_its_init_word_and_the_concepts_own_likeness():
    # Given a red concept, pictures from a word that learned it (reddish) and from its init word (green)
    red, reddish, green = flat((1.0, 0, 0)), flat((0.9, 0.1, 0)), flat((0, 1.0, 0))
    score = score_reconstruction(mean_colour, reddish, green, red)
    # Then the word scores near 1, the init word 0, and identical concept pictures are alike as can be
    assert score.similarity == pytest.approx(image_similarity(mean_colour, reddish, red))
    assert score.init_similarity == pytest.approx(0.0) and score.concept_similarity == pytest.approx(1.0)
    assert (score.generated, score.concept_pictures) == (4, 4)
    assert "the word gains +0.99" in score.text()


def test_self_similarity_leaves_each_picture_out_of_its_own_comparison():
    # Two red pictures and two green: each picture is like one other of the three
    pictures = torch.cat([flat((1.0, 0, 0), 2), flat((0, 1.0, 0), 2)])
    assert self_similarity(mean_colour, pictures) == pytest.approx(1 / 3)
