"""The Embedding value type: what a valid pseudo-word is."""

import pytest
import torch

from textual_inversion_core.embedding import Embedding, EmbeddingError


def test_vectors_are_normalised_to_detached_cpu_float32():
    source = torch.randn(2, 768, dtype=torch.float64, requires_grad=True)
    embedding = Embedding("<cat>", {"clip_l": source})
    vectors = embedding.vectors["clip_l"]
    assert vectors.dtype == torch.float32 and not vectors.requires_grad and vectors.device.type == "cpu"
    assert embedding.num_vectors == 2 and embedding.family == "sd1"


def test_encoders_are_held_in_one_order_whatever_order_they_came_in():
    # Given SDXL vectors as a file may hold them, clip_g first,
    embedding = Embedding("<x>", {"clip_g": torch.zeros(1, 1280), "clip_l": torch.zeros(1, 768)})
    # then the embedding lists them as every message does: clip_l, then clip_g.
    assert list(embedding.vectors) == ["clip_l", "clip_g"]


@pytest.mark.parametrize("vectors, family", [
    ({"clip_l": torch.zeros(1, 768)}, "sd1"),
    ({"clip_h": torch.zeros(1, 1024)}, "sd2"),
    ({"clip_l": torch.zeros(3, 768), "clip_g": torch.zeros(3, 1280)}, "sdxl"),
    ({"clip_g": torch.zeros(1, 1280)}, None),
])
def test_family_follows_from_the_encoders(vectors, family):
    assert Embedding("<x>", vectors).family == family


@pytest.mark.parametrize("token, vectors, message", [
    ("", {"clip_l": torch.zeros(1, 768)}, "non-empty token"),
    ("my cat", {"clip_l": torch.zeros(1, 768)}, "white space"),
    ("<x>", {}, "no vectors"),
    ("<x>", {"clip_x": torch.zeros(1, 768)}, "Unknown text encoder 'clip_x'"),
    ("<x>", {"clip_l": torch.zeros(768)}, "2-D"),
    ("<x>", {"clip_l": torch.zeros(1, 1024)}, "768 wide, got 1024"),
    ("<x>", {"clip_l": torch.zeros(76, 768)}, "76 vectors"),
    ("<x>", {"clip_l": torch.zeros(0, 768)}, "0 vectors"),
    ("<x>", {"clip_l": torch.full((1, 768), float("nan"))}, "NaN"),
    ("<x>", {"clip_l": torch.zeros(2, 768), "clip_g": torch.zeros(3, 1280)}, "same number"),
])
def test_invalid_embeddings_are_refused_with_the_reason(token, vectors, message):
    with pytest.raises(EmbeddingError, match=message):
        Embedding(token, vectors)


def test_check_family_explains_a_mismatch():
    sd1 = Embedding("<x>", {"clip_l": torch.zeros(1, 768)})
    sd1.check_family("sd1")
    with pytest.raises(EmbeddingError, match="SDXL model needs clip_l and clip_g"):
        sd1.check_family("sdxl")


def test_renaming_and_metadata_updates_leave_the_original_untouched():
    original = Embedding("<a>", {"clip_l": torch.ones(1, 768)}, {"steps": 5})
    renamed = original.with_token("<b>").with_metadata(steps=6)
    assert (original.token, original.metadata["steps"]) == ("<a>", 5)
    assert (renamed.token, renamed.metadata["steps"]) == ("<b>", 6)
