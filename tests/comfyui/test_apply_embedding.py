"""Apply Embedding in a running ComfyUI: the bare word means exactly what ``embedding:<file>`` means.

Each comparison samples one step from a fixed seed with the conditioning in question and compares the latents
bit for bit (see sampling.py).
"""

import pytest
import torch

from examples import CHECKPOINT
from sampling import Graph

pytestmark = pytest.mark.comfyui


def applied(graph: Graph, clip: list, file: str, token: str = "") -> list:
    embedding = graph.add("TextualInversionLoadEmbedding", embedding_name=file, token=token)
    return [graph.add("TextualInversionApplyEmbedding", clip=clip, embedding=[embedding, 0], token=token), 0]


def test_bare_word_after_apply_equals_comfyui_loading_the_file(server, trained_word):
    # Given the word <my-cat> saved as my-cat.safetensors by the training workflow,
    graph = Graph(CHECKPOINT)
    cat_clip = applied(graph, graph.clip, "my-cat.safetensors")
    with_word = graph.sample(cat_clip, "a photo of <my-cat>")
    plain = graph.sample(graph.clip, "a photo of <my-cat>")
    native = graph.sample(graph.clip, "a photo of embedding:my-cat")
    # weighted, next to punctuation, and at the start of a prompt,
    weighted = graph.sample(cat_clip, "a photo of (<my-cat>:1.2)")
    weighted_native = graph.sample(graph.clip, "a photo of (embedding:my-cat:1.2)")
    punctuated = graph.sample(cat_clip, "<my-cat>, on the moon")
    punctuated_native = graph.sample(graph.clip, "embedding:my-cat, on the moon")
    latents = graph.run(server)
    # then after Apply Embedding the bare word is the learned vectors, exactly as ComfyUI's own embedding:name,
    assert torch.equal(latents[with_word], latents[native])
    assert torch.equal(latents[weighted], latents[weighted_native])
    assert torch.equal(latents[punctuated], latents[punctuated_native])
    # and not the plain text it is on the untouched CLIP; the weight matters too.
    assert not torch.equal(latents[with_word], latents[plain])
    assert not torch.equal(latents[with_word], latents[weighted])


def test_word_survives_later_clip_clones(server, trained_word):
    # Given a CLIP with the word applied, when CLIP Set Last Layer clones it afterwards,
    graph = Graph(CHECKPOINT)
    skipped = [graph.add("CLIPSetLastLayer", clip=applied(graph, graph.clip, "my-cat.safetensors"),
                         stop_at_clip_layer=-2), 0]
    plain_skipped = [graph.add("CLIPSetLastLayer", clip=graph.clip, stop_at_clip_layer=-2), 0]
    after_clone = graph.sample(skipped, "a photo of <my-cat>")
    native = graph.sample(plain_skipped, "a photo of embedding:my-cat")
    latents = graph.run(server)
    # then the clone still knows the word.
    assert torch.equal(latents[after_clone], latents[native])


def test_chained_applies_give_several_words_and_a_token_override(server, trained_word):
    # Given the trained word loaded twice, once under another name, and both applied one after the other,
    graph = Graph(CHECKPOINT)
    two_words = applied(graph, applied(graph, graph.clip, "my-cat.safetensors"), "my-cat.safetensors", "<twin>")
    both = graph.sample(two_words, "<my-cat> and <twin>")
    native = graph.sample(graph.clip, "embedding:my-cat and embedding:my-cat")
    latents = graph.run(server)
    # then both words resolve in one prompt.
    assert torch.equal(latents[both], latents[native])


def test_original_clip_is_unchanged_by_training_and_applying(server, trained_word, plain_latent_before_training):
    # Given the checkpoint's CLIP encoded "a photo of <my-cat>" before any training in this server, when the
    # same CLIP object encodes it again after training and the Apply Embedding tests (written with two spaces, which
    # CLIP ignores, so ComfyUI cannot answer from its cache),
    graph = Graph(CHECKPOINT)
    again = graph.sample(graph.clip, "a photo of  <my-cat>")
    latents = graph.run(server)
    # then it gives exactly the same result.
    assert torch.equal(latents[again], plain_latent_before_training)
