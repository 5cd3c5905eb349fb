"""Inspect Embedding and Combine Embeddings in a running ComfyUI, on the word the example training workflow learned
(``<my-cat>``, two vectors) and on words made of the test checkpoint's own token embeddings."""

import json
import os
from pathlib import Path

import pytest
import safetensors.torch
import torch

from examples import CHECKPOINT
from textual_inversion_core import Embedding, load_embedding, save_embedding

pytestmark = pytest.mark.comfyui

CATEGORY = "textual inversion"
INSPECT, COMBINE = "TextualInversionInspectEmbedding", "TextualInversionCombineEmbeddings"
TOKEN_TABLE = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"


class Workflow:
    """An API-form prompt under construction, with the checkpoint's CLIP at hand."""

    def __init__(self, nodes: dict[str, str]):
        self.nodes, self.prompt = nodes, {}
        self.clip = [self.add("CheckpointLoaderSimple", ckpt_name=CHECKPOINT), 1]

    def add(self, class_type: str, **inputs) -> str:
        node_id = str(len(self.prompt) + 1)
        self.prompt[node_id] = {"class_type": class_type, "inputs": inputs}
        return node_id

    def load(self, file: str) -> list:
        return [self.add(self.nodes["Load Embedding"], embedding_name=file, token=""), 0]

    def inspect(self, embedding: list, **inputs) -> str:
        return self.add(INSPECT, embedding=embedding, **inputs)

    def save(self, embedding: list, prefix: str) -> str:
        return self.add(self.nodes["Save Embedding"], embedding=embedding, filename_prefix=prefix)


def reports(server, workflow: Workflow, *inspect_ids: str) -> list[str]:
    outputs = server.run(workflow.prompt)["outputs"]
    return [outputs[node_id]["text"][0] for node_id in inspect_ids]


def test_both_nodes_are_registered_with_their_specified_interfaces(server, nodes):
    info = server.get("/object_info")
    embedding_type = info[nodes["Load Embedding"]]["output"][0]
    inspect, combine = info[INSPECT], info[COMBINE]
    assert (inspect["display_name"], inspect["category"]) == ("Inspect Embedding", CATEGORY)
    assert list(inspect["input"]["required"]) == ["embedding"]
    assert list(inspect["input"]["optional"]) == ["clip", "prompt"]
    assert inspect["input"]["required"]["embedding"][0] == embedding_type
    assert inspect["input"]["optional"]["prompt"][1]["multiline"] is True
    assert inspect["output"] == ["STRING"] and inspect["output_name"] == ["report"]
    assert (combine["display_name"], combine["category"]) == ("Combine Embeddings", CATEGORY)
    assert list(combine["input"]["required"]) == ["embedding_a", "embedding_b", "mode", "weights", "token"]
    assert list(combine["input"]["optional"]) == ["embedding_c"]
    assert combine["input"]["required"]["mode"][1]["options"] == ["concatenate", "mix"]
    assert combine["output"] == [embedding_type] and combine["output_name"] == ["embedding"]


def test_inspect_reports_the_vectors_and_how_prompts_tokenize_with_the_word(server, trained_word, nodes):
    # Given the trained word, inspected with the checkpoint's CLIP and three prompts,
    workflow = Workflow(nodes)
    word = workflow.load("my-cat.safetensors")
    short = workflow.inspect(word, clip=workflow.clip, prompt="a photo of <my-cat>")
    # 74 words fill a chunk but for one token, so ComfyUI moves the two-vector word to the next chunk whole,
    long = workflow.inspect(word, clip=workflow.clip, prompt="photo " * 74 + "<my-cat>")
    missing = workflow.inspect(word, clip=workflow.clip, prompt="a photo of my cat")
    alone = workflow.inspect(word)
    short, long, missing, alone = reports(server, workflow, short, long, missing, alone)
    # then the report gives the encoders and vector count, each vector's norm and nearest words,
    assert short.startswith("<my-cat>: 2 vectors per text encoder, for SD1 (clip_l 768)\n")
    assert "clip_l (the vocabulary's median token norm is " in short
    assert short.count("x the median); nearest words ") == 2
    # where the word sits in the prompt and how many of the 75 tokens it uses,
    assert ("prompt 'a photo of <my-cat>': 5 of 75 tokens\n"
            "  <my-cat> found: its 2 vectors are tokens 4-5 of chunk 1") in short
    assert "76 tokens, more than 75, so it is encoded in 2 chunks of 77 (74 + 2 tokens)" in long
    assert "<my-cat> found: its 2 vectors are tokens 1-2 of chunk 2" in long
    assert "<my-cat> is not in the prompt: write it as a word of its own" in missing
    # the training's metadata (each vector's norm against the training model's median among it), and without a
    # CLIP the norms alone.
    assert "init_text: cat" in short and "steps: 3" in short and "norm_to_median: {'clip_l': [" in short
    vectors_part = alone.split("metadata:")[0]
    assert "vector 2: norm " in vectors_part and "nearest" not in vectors_part and "median" not in vectors_part


def vocabulary_rows(checkpoint: Path, words: list[str]) -> torch.Tensor:
    """The test checkpoint's own token embeddings of ``words``, found through ComfyUI's SD1 vocabulary."""
    vocab = json.loads((Path(os.environ["COMFYUI_PATH"]) / "comfy" / "sd1_tokenizer" / "vocab.json").read_text())
    table = safetensors.torch.load_file(checkpoint)[TOKEN_TABLE].float()
    return table[[vocab[word] for word in words]]


def test_inspect_finds_the_word_a_vector_was_taken_from(server, nodes, checkpoint_file):
    # Given a word made of the checkpoint's own vectors for "cat" and, three times as long, "dog",
    rows = vocabulary_rows(checkpoint_file, ["cat</w>", "dog</w>"]) * torch.tensor([[1.0], [3.0]])
    save_embedding(Embedding("<pet>", {"clip_l": rows}), server.embeddings / "pet.safetensors", overwrite=True)
    # when it is inspected with the checkpoint's CLIP,
    workflow = Workflow(nodes)
    [report] = reports(server, workflow, workflow.inspect(workflow.load("pet.safetensors"), clip=workflow.clip))
    # then each vector's nearest word is the one it came from, and its norm is its own.
    lines = [line for line in report.splitlines() if line.startswith("  vector ")]
    for line, row, source in zip(lines, rows, ["cat", "dog"], strict=True):
        assert f"nearest words {source} 1.00, " in line
        assert float(line.split("norm ")[1].split(" ")[0]) == pytest.approx(row.norm().item(), rel=5e-3)


def test_combine_concatenates_and_mixes_into_a_new_word(server, trained_word, nodes, checkpoint_file):
    # Given the trained word and a one-vector word of the checkpoint's "hat",
    hat = vocabulary_rows(checkpoint_file, ["hat</w>"])
    save_embedding(Embedding("<hat>", {"clip_l": hat}), server.embeddings / "hat.safetensors", overwrite=True)
    cat = load_embedding(server.embeddings / "my-cat.safetensors").vectors["clip_l"]
    workflow = Workflow(nodes)
    word, other = workflow.load("my-cat.safetensors"), workflow.load("hat.safetensors")
    # when they are concatenated, and the trained word mixed with itself at 0.25 and 0.75,
    stacked = [workflow.add(COMBINE, embedding_a=word, embedding_b=other, embedding_c=word, mode="concatenate",
                            weights="", token="<cat-hat-cat>"), 0]
    mixed = [workflow.add(COMBINE, embedding_a=word, embedding_b=word, mode="mix", weights="0.25, 0.75",
                          token="<cat-mix>"), 0]
    workflow.save(stacked, "stacked")
    workflow.save(mixed, "mixed")
    [report] = reports(server, workflow, workflow.inspect(stacked))
    # then the stacked word holds the vectors in input order under the new token,
    stacked_file = load_embedding(server.embeddings / "stacked.safetensors")
    assert stacked_file.token == "<cat-hat-cat>" and report.startswith("<cat-hat-cat>: 5 vectors per text encoder")
    assert torch.equal(stacked_file.vectors["clip_l"], torch.cat([cat, hat, cat]))
    # and the mix of a word with itself is that word again.
    mixed_file = load_embedding(server.embeddings / "mixed.safetensors")
    assert mixed_file.token == "<cat-mix>" and mixed_file.metadata["weights"] == [0.25, 0.75]
    assert torch.allclose(mixed_file.vectors["clip_l"], cat)


def test_combine_refuses_words_of_different_families_naming_the_input(server, trained_word, nodes):
    # Given the SD1 word and an SDXL word,
    sdxl = Embedding("<xl>", {"clip_l": torch.zeros(1, 768), "clip_g": torch.zeros(1, 1280)})
    save_embedding(sdxl, server.embeddings / "xl.safetensors", overwrite=True)
    workflow = Workflow(nodes)
    combined = workflow.add(COMBINE, embedding_a=workflow.load("my-cat.safetensors"),
                            embedding_b=workflow.load("xl.safetensors"), mode="concatenate", weights="", token="<x>")
    workflow.save([combined, 0], "never")
    # when they are combined, then the run fails with the input at fault and the way out.
    entry = server.wait(server.queue(workflow.prompt))
    error = server.execution_error(entry)
    assert error["node_type"] == COMBINE
    assert error["exception_type"] == "textual_inversion_core.embedding.EmbeddingError"
    assert ("embedding_b ('<xl>') is for SDXL (clip_l, clip_g), but embedding_a ('<my-cat>') is for SD1 (clip_l); "
            "combine embeddings of one model family.") in error["exception_message"]
    assert not (server.embeddings / "never.safetensors").exists()
