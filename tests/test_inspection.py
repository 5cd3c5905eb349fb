"""Inspecting an embedding: its vectors read against a vocabulary, and where a prompt puts the word."""

import json

import torch

from textual_inversion_core.embedding import Embedding
from textual_inversion_core.inspection import PromptPlacement, Vocabulary, WordSlot, inspect_embedding

WIDTH = 768


def axis(i: int, length: float = 1.0) -> torch.Tensor:
    vector = torch.zeros(WIDTH)
    vector[i] = length
    return vector


# Five tokens along five axes, of norms 1 to 5 (median 3); "ca" is a word piece, the others end a word.
VOCABULARY = Vocabulary(
    table=torch.stack([axis(i, i + 1.0) for i in range(5)]),
    words={0: "cat</w>", 1: "dog</w>", 2: "ca", 3: "hat</w>", 4: "<|endoftext|>"},
)


def test_each_vector_is_measured_against_the_vocabularys_median_norm_and_nearest_words():
    # Given a word of two vectors: one along "cat" at twice the median norm, one between "dog" and "hat"
    between = axis(1) + axis(3, 0.5)
    embedding = Embedding("<my-cat>", {"clip_l": torch.stack([axis(0, 6.0), between])}, {"init_text": "cat"})
    # When it is inspected against the vocabulary
    report = inspect_embedding(embedding, {"clip_l": VOCABULARY})
    [first, second] = report.encoders["clip_l"].vectors
    # Then each vector's norm is given beside the median token norm
    assert report.encoders["clip_l"].median_token_norm == 3.0
    assert (first.norm, first.norm_to_median) == (6.0, 2.0)
    # and its nearest words by cosine, best first, shown without CLIP's end-of-word marker
    assert (first.nearest[0].word, first.nearest[0].cosine) == ("cat", 1.0) and len(first.nearest) == 5
    assert all(w.cosine == 0.0 for w in first.nearest[1:])
    assert [w.word for w in second.nearest[:2]] == ["dog", "hat"]
    assert second.nearest[0].cosine == round(1 / 1.25 ** 0.5, 4)
    # and it fits the model, as its text and plain data both say.
    assert report.model_fit is None
    text = report.text()
    assert "<my-cat>: 2 vectors per text encoder, for SD1 (clip_l 768)" in text
    assert "vector 1: norm 6 (2.00x the median); nearest words cat 1.00, " in text
    assert "init_text: cat" in text
    data = json.loads(json.dumps(report.as_dict()))
    assert data["encoders"]["clip_l"]["vectors"][0]["nearest"][0] == {"word": "cat", "cosine": 1.0}
    assert data["token"] == "<my-cat>" and data["metadata"] == {"init_text": "cat"} and data["model_fit"] is None


def test_without_a_vocabulary_only_the_norms_are_given():
    report = inspect_embedding(Embedding("<x>", {"clip_l": axis(0, 2.0)[None]}))
    [vector] = report.encoders["clip_l"].vectors
    assert (vector.norm, vector.norm_to_median, vector.nearest) == (2.0, None, ())
    assert "vector 1: norm 2\n" in report.text() + "\n" and report.model_fit is None


def test_an_embedding_of_another_family_is_said_not_to_fit():
    sdxl = Embedding("<xl>", {"clip_l": axis(0)[None], "clip_g": torch.ones(1, 1280)})
    report = inspect_embedding(sdxl, {"clip_l": VOCABULARY})
    assert "made for SDXL" in report.model_fit and "not for SD1" in report.model_fit
    # the encoder both have is still read against the vocabulary
    assert report.encoders["clip_l"].vectors[0].nearest[0].word == "cat"
    assert report.encoders["clip_g"].median_token_norm is None


def placed(tokens_per_chunk, slots, prompt="a photo of <my-cat>"):
    embedding = Embedding("<my-cat>", {"clip_l": torch.ones(2, WIDTH)})
    placement = PromptPlacement(prompt, tokens_per_chunk, tuple(WordSlot(*slot) for slot in slots))
    return inspect_embedding(embedding, prompt=placement)


def test_the_prompt_report_says_where_the_words_vectors_sit():
    report = placed((5,), [(1, 4, 0), (1, 5, 1)])
    assert report.prompt.found
    assert "prompt 'a photo of <my-cat>': 5 of 75 tokens" in report.text()
    assert "<my-cat> found: its 2 vectors are tokens 4-5 of chunk 1" in report.text()
    assert report.as_dict()["prompt"]["word_slots"][0] == {"chunk": 1, "position": 4, "row": 0}


def test_a_word_split_over_two_chunks_and_a_word_used_twice_are_told_apart():
    split = placed((75, 3), [(1, 75, 0), (2, 1, 1)])
    assert "78 tokens, more than 75, so it is encoded in 2 chunks of 77 (75 + 3 tokens)" in split.text()
    assert "token 75 of chunk 1 and token 1 of chunk 2 (split across chunks, which are encoded apart)" in split.text()
    twice = placed((6,), [(1, 1, 0), (1, 2, 1), (1, 5, 0), (1, 6, 1)])
    assert twice.text().count("<my-cat> found") == 2 and "tokens 5-6 of chunk 1" in twice.text()


def test_a_prompt_without_the_word_says_how_to_write_it():
    report = placed((4,), [], prompt="a photo of my cat")
    assert not report.prompt.found and report.as_dict()["prompt"]["found"] is False
    assert "<my-cat> is not in the prompt: write it as a word of its own, e.g. 'a photo of <my-cat>'" in report.text()
