"""Combining embeddings: several words stacked into one, or mixed with weights, only within one model family."""

import pytest
import torch

from textual_inversion_core.combining import combine_embeddings, parse_weights
from textual_inversion_core.embedding import Embedding, EmbeddingError


def word(token: str, n: int, value: float = 1.0, encoders=("clip_l",)) -> Embedding:
    widths = {"clip_l": 768, "clip_g": 1280, "clip_h": 1024}
    return Embedding(token, {name: torch.full((n, widths[name]), value) for name in encoders}, {"steps": 100})


def test_concatenate_stacks_the_vectors_in_input_order_under_the_new_word():
    # Given a two-vector and a one-vector word of SDXL,
    sdxl = ("clip_l", "clip_g")
    a, b = word("<cat>", 2, 1.0, sdxl), word("<hat>", 1, 2.0, sdxl)
    # when they are concatenated,
    combined = combine_embeddings({"embedding_a": a, "embedding_b": b}, "concatenate", "<cat-in-hat>")
    # then the new word holds a's vectors then b's, for both encoders, and says where it came from.
    assert combined.token == "<cat-in-hat>" and combined.num_vectors == 3 and combined.family == "sdxl"
    for name in sdxl:
        assert torch.equal(combined.vectors[name], torch.cat([a.vectors[name], b.vectors[name]]))
    assert combined.metadata == {"combined": "concatenate", "sources": [
        {"label": "embedding_a", "token": "<cat>", "num_vectors": 2},
        {"label": "embedding_b", "token": "<hat>", "num_vectors": 1},
    ]}


def test_concatenating_past_75_vectors_is_refused_with_the_counts():
    with pytest.raises(EmbeddingError, match=r"77 vectors \(embedding_a 40, embedding_b 37\); a word holds at most 75"):
        combine_embeddings({"embedding_a": word("<a>", 40), "embedding_b": word("<b>", 37)}, "concatenate", "<ab>")


def test_mix_is_the_weighted_sum_and_equal_shares_without_weights():
    a, b, c = word("<a>", 2, 1.0), word("<b>", 2, 3.0), word("<c>", 2, -1.0)
    mixed = combine_embeddings({"embedding_a": a, "embedding_b": b}, "mix", "<ab>", [0.25, 0.5])
    assert torch.allclose(mixed.vectors["clip_l"], torch.full((2, 768), 0.25 * 1 + 0.5 * 3))
    assert mixed.metadata["combined"] == "mix" and mixed.metadata["weights"] == [0.25, 0.5]
    # without weights each of the three takes a third: their mean
    even = combine_embeddings({"embedding_a": a, "embedding_b": b, "embedding_c": c}, "mix", "<abc>")
    assert torch.allclose(even.vectors["clip_l"], torch.full((2, 768), 1.0))


@pytest.mark.parametrize("embeddings, weights, message", [
    ({"embedding_a": word("<a>", 2), "embedding_b": word("<b>", 3)}, None,
     "same number of vectors; embedding_a has 2, embedding_b has 3"),
    ({"embedding_a": word("<a>", 1), "embedding_b": word("<b>", 1)}, [0.5, 0.3, 0.2], "2 embeddings, 3 weights"),
    ({"embedding_a": word("<a>", 1), "embedding_b": word("<b>", 1)}, [0.5, float("nan")], "finite"),
])
def test_a_mix_that_cannot_be_made_is_refused_with_the_reason(embeddings, weights, message):
    with pytest.raises(EmbeddingError, match=message):
        combine_embeddings(embeddings, "mix", "<mixed>", weights)


@pytest.mark.parametrize("mode", ["concatenate", "mix"])
def test_embeddings_of_different_families_are_refused_naming_the_odd_one(mode):
    # Given two SD1 words and an SDXL word as the third input,
    embeddings = {"embedding_a": word("<a>", 1), "embedding_b": word("<b>", 1),
                  "embedding_c": word("<xl>", 1, encoders=("clip_l", "clip_g"))}
    # then combining them says which input differs, and how.
    with pytest.raises(EmbeddingError, match=r"embedding_c \('<xl>'\) is for SDXL \(clip_l, clip_g\), but "
                                             r"embedding_a \('<a>'\) is for SD1 \(clip_l\); combine embeddings of one"):
        combine_embeddings(embeddings, mode, "<abc>")


def test_weights_are_read_from_text_and_empty_means_equal_shares():
    assert parse_weights("0.5, 0.5") == [0.5, 0.5]
    assert parse_weights(" 1,-0.25 ") == [1.0, -0.25]
    assert parse_weights("  ") is None
    with pytest.raises(EmbeddingError, match="numbers separated by commas, e.g. '0.5, 0.5', got 'half, half'"):
        parse_weights("half, half")


def test_the_new_word_must_be_one_word():
    with pytest.raises(EmbeddingError, match="white space"):
        combine_embeddings({"embedding_a": word("<a>", 1)}, "concatenate", "my word")
