"""diffusers' own ``load_textual_inversion`` accepts the files we write and puts our vectors into the text
encoder under the word (and its ``_1``, ``_2``... companions for a multi-vector word)."""

import pytest
import safetensors.torch
import torch

from textual_inversion_core.embedding import Embedding
from textual_inversion_core.formats import save_embedding
from textual_inversion_core.demo.tiny_models import build_random_pipeline

TOKEN = "<my-cat>"


def vectors(n: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def assert_word_holds(tokenizer, text_encoder, expected: torch.Tensor) -> None:
    """The word's tokens exist, a prompt using the word reaches them in order, and their rows are ``expected``."""
    names = [TOKEN] + [f"{TOKEN}_{i}" for i in range(1, expected.shape[0])]
    ids = tokenizer.convert_tokens_to_ids(names)
    assert tokenizer.unk_token_id not in ids
    prompt_ids = tokenizer(f"a photo of {' '.join(names)}").input_ids
    assert prompt_ids[-1 - len(ids) : -1] == ids
    assert torch.equal(text_encoder.get_input_embeddings().weight[ids].detach(), expected)


@pytest.mark.parametrize("file_name, format, token", [
    ("my-cat.safetensors", "safetensors", TOKEN),  # emb_params carries no name diffusers can see
    ("learned_embeds.safetensors", "diffusers", None),
    ("learned_embeds.bin", "diffusers", None),
    ("my-cat.pt", "a1111-pt", None),  # diffusers takes the word from A1111's "name"
])
def test_sd1_files_load_in_diffusers(tmp_path, file_name, format, token):
    # Given a three-vector SD1 embedding written in one of our formats
    embedding = Embedding(TOKEN, {"clip_l": vectors(3, 768)})
    path = save_embedding(embedding, tmp_path / file_name, format=format)[0]
    # When diffusers loads it into a pipeline
    pipe = build_random_pipeline("sd1")
    pipe.load_textual_inversion(str(path), token=token)
    # Then the text encoder holds our vectors under the word
    assert_word_holds(pipe.tokenizer, pipe.text_encoder, embedding.vectors["clip_l"])


def test_sd2_file_loads_in_diffusers(tmp_path):
    embedding = Embedding(TOKEN, {"clip_h": vectors(2, 1024)})
    path = save_embedding(embedding, tmp_path / "my-cat.safetensors")[0]
    pipe = build_random_pipeline("sd2")
    pipe.load_textual_inversion(str(path), token=TOKEN)
    assert_word_holds(pipe.tokenizer, pipe.text_encoder, embedding.vectors["clip_h"])


def sdxl_embedding() -> Embedding:
    return Embedding(TOKEN, {"clip_l": vectors(2, 768), "clip_g": vectors(2, 1280, seed=1)})


def test_sdxl_file_loads_in_diffusers_one_encoder_at_a_time(tmp_path):
    # Given our SDXL safetensors file, loaded the way diffusers documents for clip_l/clip_g files
    embedding = sdxl_embedding()
    state = safetensors.torch.load_file(save_embedding(embedding, tmp_path / "my-cat.safetensors")[0])
    pipe = build_random_pipeline("sdxl")
    tokens = [TOKEN, f"{TOKEN}_1"]
    pipe.load_textual_inversion(state["clip_l"], token=tokens, text_encoder=pipe.text_encoder,
                                tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(state["clip_g"], token=tokens, text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    # Then each encoder holds its own vectors under the word
    assert_word_holds(pipe.tokenizer, pipe.text_encoder, embedding.vectors["clip_l"])
    assert_word_holds(pipe.tokenizer_2, pipe.text_encoder_2, embedding.vectors["clip_g"])


def test_sdxl_diffusers_pair_loads_file_by_file(tmp_path):
    embedding = sdxl_embedding()
    first, second = save_embedding(embedding, tmp_path / "learned_embeds.safetensors", format="diffusers")
    pipe = build_random_pipeline("sdxl")
    pipe.load_textual_inversion(str(first), text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(str(second), text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
    assert_word_holds(pipe.tokenizer, pipe.text_encoder, embedding.vectors["clip_l"])
    assert_word_holds(pipe.tokenizer_2, pipe.text_encoder_2, embedding.vectors["clip_g"])
