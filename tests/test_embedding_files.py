"""Embedding files as specifications: every layout the popular trainers write reads back to the same tensors,
dangerous or broken files are refused with the reason, and every writer's output reads back unchanged.

The fixtures write each layout from its published key names (never copied files)."""

import contextlib
import json
import pickle
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch

from textual_inversion_core.embedding import Embedding
from textual_inversion_core.formats import (
    EMBEDDING_FORMATS,
    EmbeddingFileError,
    UnsafeEmbeddingFileError,
    describe_embedding,
    load_embedding,
    save_embedding,
)


def vectors(n: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def assert_same_vectors(embedding: Embedding, expected: dict[str, torch.Tensor]) -> None:
    assert set(embedding.vectors) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(embedding.vectors[name], tensor.reshape(-1, tensor.shape[-1]).float()), name


# --- Each published layout, written from its key names ------------------------------------------------------
# Every case writes into a folder and returns (file to load, expected vectors, expected token).

def a1111_pt(folder):
    v = vectors(2, 768)
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": v}, "name": "my-style", "step": 1500,
                "sd_checkpoint": "a9263745", "sd_checkpoint_name": "v1-5-pruned"}, folder / "my-style.pt")
    return folder / "my-style.pt", {"clip_l": v}, "my-style"


def a1111_pt_with_parameter_dict(folder):
    # Files from A1111's first months pickle an nn.ParameterDict, which weights_only alone refuses.
    v = vectors(3, 768)
    table = torch.nn.ParameterDict({"*": torch.nn.Parameter(v.clone())})
    torch.save({"string_to_token": {"*": 265}, "string_to_param": table, "name": "old-style", "step": 9,
                "sd_checkpoint": None, "sd_checkpoint_name": None}, folder / "old.pt")
    return folder / "old.pt", {"clip_l": v}, "old-style"


def a1111_pt_legacy_serialization(folder):
    # torch.save before PyTorch 1.6 wrote a bare pickle stream instead of a zip archive.
    v = vectors(1, 768)
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": v}, "name": "legacy"}, folder / "legacy.pt",
               _use_new_zipfile_serialization=False)
    return folder / "legacy.pt", {"clip_l": v}, "legacy"


def paper_official_pt(folder):
    # The paper's code saves {"string_to_token": {placeholder: tensor id}, "string_to_param": nn.ParameterDict}.
    v = vectors(1, 768)
    torch.save({"string_to_token": {"*": torch.tensor(265)},
                "string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(v.clone())})},
               folder / "embeddings_gs-6099.pt")
    return folder / "embeddings_gs-6099.pt", {"clip_l": v}, "embeddings_gs-6099"


def emb_params_safetensors(folder):
    # kohya and invoke-training (and A1111, reading it as a one-key file).
    v = vectors(4, 768)
    safetensors.torch.save_file({"emb_params": v}, folder / "kohya-cat.safetensors")
    return folder / "kohya-cat.safetensors", {"clip_l": v}, "kohya-cat"


def onetrainer_emp_params(folder):
    v = vectors(2, 768)
    safetensors.torch.save_file({"emp_params": v, "emp_params_out": vectors(2, 768, seed=9)},
                                folder / "ot.safetensors")
    return folder / "ot.safetensors", {"clip_l": v}, "ot"


def diffusers_learned_embeds(folder):
    v = vectors(2, 768)
    safetensors.torch.save_file({"<cat-toy>": v}, folder / "learned_embeds.safetensors")
    return folder / "learned_embeds.safetensors", {"clip_l": v}, "<cat-toy>"


def diffusers_bin_single_vector(folder):
    # Early diffusers concepts: a 1-D vector under the token, pickled.
    v = vectors(1, 768)[0]
    torch.save({"<midjourney-style>": v}, folder / "learned_embeds.bin")
    return folder / "learned_embeds.bin", {"clip_l": v}, "<midjourney-style>"


def diffusers_one_token_per_vector(folder):
    v = vectors(3, 768)
    safetensors.torch.save_file({"<tok>": v[0], "<tok>_1": v[1], "<tok>_2": v[2].unsqueeze(0)},
                                folder / "split.safetensors")
    return folder / "split.safetensors", {"clip_l": v}, "<tok>"


def kohya_one_token_per_vector(folder):
    v = vectors(3, 768)
    safetensors.torch.save_file({"tok": v[0], "tok1": v[1], "tok2": v[2]}, folder / "kohya-split.safetensors")
    return folder / "kohya-split.safetensors", {"clip_l": v}, "tok"


def sdxl_clip_l_clip_g(folder):
    l, g = vectors(2, 768), vectors(2, 1280, seed=1)
    safetensors.torch.save_file({"clip_l": l, "clip_g": g}, folder / "xl.safetensors")
    return folder / "xl.safetensors", {"clip_l": l, "clip_g": g}, "xl"


def sdxl_onetrainer_with_out_keys(folder):
    l, g = vectors(2, 768), vectors(2, 1280, seed=1)
    safetensors.torch.save_file({"clip_l": l, "clip_g": g, "clip_l_out": vectors(2, 768, seed=5),
                                 "clip_g_out": vectors(2, 1280, seed=6)}, folder / "ot-xl.safetensors")
    return folder / "ot-xl.safetensors", {"clip_l": l, "clip_g": g}, "ot-xl"


def sdxl_diffusers_pair(folder):
    # diffusers' SDXL script writes one file per text encoder; either half brings in the other.
    l, g = vectors(2, 768), vectors(2, 1280, seed=1)
    safetensors.torch.save_file({"<xl-tok>": l}, folder / "learned_embeds.safetensors")
    safetensors.torch.save_file({"<xl-tok>": g}, folder / "learned_embeds_2.safetensors")
    return folder / "learned_embeds_2.safetensors", {"clip_l": l, "clip_g": g}, "<xl-tok>"


def sd2_emb_params(folder):
    v = vectors(2, 1024)
    safetensors.torch.save_file({"emb_params": v}, folder / "sd2.safetensors")
    return folder / "sd2.safetensors", {"clip_h": v}, "sd2"


def sd2_clip_h(folder):
    v = vectors(2, 1024)
    safetensors.torch.save_file({"clip_h": v}, folder / "sd2-h.safetensors")
    return folder / "sd2-h.safetensors", {"clip_h": v}, "sd2-h"


def a1111_pt_with_half_precision(folder):
    v = vectors(1, 768).half()
    torch.save({"string_to_param": {"*": v}, "name": "half"}, folder / "half.pt")
    return folder / "half.pt", {"clip_l": v}, "half"


LAYOUTS = [a1111_pt, a1111_pt_with_parameter_dict, a1111_pt_legacy_serialization, paper_official_pt,
           emb_params_safetensors, onetrainer_emp_params, diffusers_learned_embeds, diffusers_bin_single_vector,
           diffusers_one_token_per_vector, kohya_one_token_per_vector, sdxl_clip_l_clip_g,
           sdxl_onetrainer_with_out_keys, sdxl_diffusers_pair, sd2_emb_params, sd2_clip_h,
           a1111_pt_with_half_precision]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_each_published_layout_reads_back_to_the_same_tensors(tmp_path, layout):
    # Given a file in one trainer's layout
    path, expected, token = layout(tmp_path)
    # When it is loaded without saying what it is
    embedding = load_embedding(path)
    # Then the same vectors come back, under the file's own name for the word
    assert_same_vectors(embedding, expected)
    assert embedding.token == token


def test_a1111_fields_become_metadata(tmp_path):
    path, _, _ = a1111_pt(tmp_path)
    assert load_embedding(path).metadata == {"steps": 1500, "base_model_hash": "a9263745",
                                             "base_model_name": "v1-5-pruned"}


def test_a_diffusers_output_folder_loads_like_its_file(tmp_path):
    _, expected, token = diffusers_learned_embeds(tmp_path)
    embedding = load_embedding(tmp_path)
    assert_same_vectors(embedding, expected)
    assert embedding.token == token


def test_token_renames_the_word(tmp_path):
    path, expected, _ = emb_params_safetensors(tmp_path)
    embedding = load_embedding(path, token="<kitty>")
    assert embedding.token == "<kitty>"
    assert_same_vectors(embedding, expected)


def test_a_name_with_spaces_becomes_a_usable_word(tmp_path):
    torch.save({"string_to_param": {"*": vectors(1, 768)}, "name": "bad hands 5"}, tmp_path / "bad hands 5.pt")
    assert load_embedding(tmp_path / "bad hands 5.pt").token == "bad_hands_5"


def several_placeholders(folder):
    star, at = vectors(1, 768), vectors(2, 768, seed=1)
    table = torch.nn.ParameterDict({"*": torch.nn.Parameter(star), "@": torch.nn.Parameter(at)})
    torch.save({"string_to_token": {"*": torch.tensor(265), "@": torch.tensor(266)}, "string_to_param": table},
               folder / "two.pt")
    return folder / "two.pt", star, at


def test_token_picks_among_several_placeholders(tmp_path):
    # Given the paper's checkpoint holding two placeholders
    path, _, at = several_placeholders(tmp_path)
    # When one is asked for by name, then that one comes back under that name
    embedding = load_embedding(path, token="@")
    assert embedding.token == "@"
    assert torch.equal(embedding.vectors["clip_l"], at)


@pytest.mark.parametrize("token, message", [
    (None, r"holds 2 placeholders \('\*', '@'\); choose one"),
    ("<nope>", r"no placeholders named '<nope>'; choose one of '\*', '@'"),
])
def test_several_placeholders_without_a_match_are_listed_in_the_error(tmp_path, token, message):
    path, _, _ = several_placeholders(tmp_path)
    with pytest.raises(EmbeddingFileError, match=message) as caught:
        load_embedding(path, token=token)
    assert str(path) in str(caught.value)


def test_several_diffusers_tokens_are_picked_by_name(tmp_path):
    a, b = vectors(1, 768), vectors(2, 768, seed=1)
    safetensors.torch.save_file({"<a>": a, "<b>": b[0], "<b>_1": b[1]}, tmp_path / "ab.safetensors")
    assert torch.equal(load_embedding(tmp_path / "ab.safetensors", token="<b>").vectors["clip_l"], b)
    with pytest.raises(EmbeddingFileError, match="'<a>', '<b>'"):
        load_embedding(tmp_path / "ab.safetensors")


# --- Widths checked against the target model ----------------------------------------------------------------

@pytest.mark.parametrize("layout, family, message", [
    (emb_params_safetensors, "sdxl", "SDXL model needs clip_l and clip_g"),
    (sd2_emb_params, "sd1", r"clip_h \(1024 wide\), but a SD1 model needs clip_l"),
    (sdxl_clip_l_clip_g, "sd1", "made for SDXL .* not for SD1"),
    (emb_params_safetensors, "sd2", "SD2 model needs clip_h"),
])
def test_an_embedding_for_another_family_is_refused(tmp_path, layout, family, message):
    path, _, _ = layout(tmp_path)
    with pytest.raises(EmbeddingFileError, match=message) as caught:
        load_embedding(path, family=family)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("layout, family", [(emb_params_safetensors, "sd1"), (sd2_clip_h, "sd2"),
                                            (sdxl_diffusers_pair, "sdxl")])
def test_an_embedding_for_the_right_family_passes(tmp_path, layout, family):
    path, expected, _ = layout(tmp_path)
    assert_same_vectors(load_embedding(path, family=family), expected)


# --- Safety -------------------------------------------------------------------------------------------------

class WritesMarker:
    """Unpickled by a plain unpickler, this calls exec and writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def malicious_files(folder: Path, marker: Path) -> list[Path]:
    zipped = folder / "zipped.pt"
    torch.save({"string_to_param": {"*": vectors(1, 768)}, "name": WritesMarker(marker)}, zipped)
    raw = folder / "raw.bin"
    raw.write_bytes(pickle.dumps({"<x>": WritesMarker(marker)}, protocol=2))
    text_protocol = folder / "text.pt"
    text_protocol.write_bytes(pickle.dumps(WritesMarker(marker), protocol=0))
    return [zipped, raw, text_protocol]


def test_the_malicious_fixtures_really_run_code_when_unpickled_plainly(tmp_path):
    # Guards the next test: its files must be dangerous for its check to mean anything.
    marker = tmp_path / "plain-unpickler-ran-code"
    for path in malicious_files(tmp_path, marker):
        marker.unlink(missing_ok=True)
        # A bare pickle runs its code, then fails torch's format check: too late.
        with contextlib.suppress(RuntimeError):
            torch.load(path, weights_only=False)
        assert marker.read_text() == "code ran", path.name


def test_a_pickle_that_would_run_code_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "our-reader-ran-code"
    for path in malicious_files(tmp_path, marker):
        with pytest.raises(UnsafeEmbeddingFileError, match=r"would run code \(it asks for exec\)") as caught:
            load_embedding(path)
        assert str(path) in str(caught.value)
        assert not marker.exists(), path.name


def write_tensor_file(path: Path, tensor: torch.Tensor) -> Path:
    safetensors.torch.save_file({"emb_params": tensor}, path)
    return path


@pytest.mark.parametrize("tensor, message", [
    (torch.full((1, 768), float("nan")), "NaN or infinite"),
    (torch.tensor([[float("inf")] * 768]), "NaN or infinite"),
    (torch.zeros(76, 768), "76 vectors"),
    (torch.zeros(1, 512), r"512 wide, which matches no Stable Diffusion text encoder"),
    (torch.zeros(2, 3, 768), r"shape \[2, 3, 768\]"),
    (torch.zeros(1, 768, dtype=torch.int32), "not floating-point"),
])
def test_unusable_vectors_are_refused_with_the_reason(tmp_path, tensor, message):
    path = write_tensor_file(tmp_path / "bad.safetensors", tensor)
    with pytest.raises(EmbeddingFileError, match=message) as caught:
        load_embedding(path)
    assert str(path) in str(caught.value)


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(EmbeddingFileError, match="is empty"):
        load_embedding(tmp_path / "empty.safetensors")


def truncated(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize("layout", [emb_params_safetensors, a1111_pt, a1111_pt_legacy_serialization],
                         ids=lambda f: f.__name__)
def test_a_truncated_file_is_refused(tmp_path, layout):
    path = truncated(layout(tmp_path)[0])
    with pytest.raises(EmbeddingFileError, match="truncated") as caught:
        load_embedding(path)
    assert not isinstance(caught.value, UnsafeEmbeddingFileError)


def test_a_file_cut_inside_its_safetensors_header_is_refused(tmp_path):
    path = truncated(emb_params_safetensors(tmp_path)[0], keep=0.01)
    with pytest.raises(EmbeddingFileError, match="truncated"):
        load_embedding(path)


def test_an_unknown_layout_names_the_keys_it_found(tmp_path):
    # Given a LoRA-like file, which is no embedding
    safetensors.torch.save_file({"lora_unet_down.lora_up.weight": torch.zeros(320, 4),
                                 "lora_unet_down.lora_down.weight": torch.zeros(4, 320)}, tmp_path / "lora.safetensors")
    with pytest.raises(EmbeddingFileError, match=r"'lora_unet_down.lora_up.weight' \[320, 4\]") as caught:
        load_embedding(tmp_path / "lora.safetensors")
    assert "lora_unet_down.lora_down.weight" in str(caught.value) and "LoRA" in str(caught.value)


def test_a_dictionary_without_tensors_is_an_unknown_layout(tmp_path):
    torch.save({"name": "x", "step": 3}, tmp_path / "nothing.pt")
    with pytest.raises(EmbeddingFileError, match=r"not an embedding layout .*'name' str, 'step' int"):
        load_embedding(tmp_path / "nothing.pt")


def test_a_web_page_saved_as_an_embedding_is_recognised_as_not_one(tmp_path):
    (tmp_path / "cat.safetensors").write_text("<!DOCTYPE html><html>Not found</html>")
    with pytest.raises(EmbeddingFileError, match="no safetensors header"):
        load_embedding(tmp_path / "cat.safetensors")
    (tmp_path / "cat.txt").write_text("<!DOCTYPE html><html>Not found</html>")
    with pytest.raises(EmbeddingFileError, match="web page"):
        load_embedding(tmp_path / "cat.txt")


def test_a_file_far_too_large_for_an_embedding_is_refused_before_reading(tmp_path):
    path = tmp_path / "model.pt"
    with open(path, "wb") as handle:
        handle.write(b"PK\x03\x04")
        handle.truncate(100 * 2**20)  # sparse: costs no disk
    with pytest.raises(EmbeddingFileError, match="checkpoint or LoRA"):
        load_embedding(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(EmbeddingFileError, match="does not exist"):
        load_embedding(tmp_path / "nope.safetensors")


# --- Writing ------------------------------------------------------------------------------------------------

METADATA = {"init_text": "cat", "steps": 1500, "learning_rate": 0.005, "lr_schedule_text": "0.005",
            "base_model_hash": "a9263745", "loss": {"final": 0.12, "best": 0.1}, "template": "object"}

EMBEDDINGS = {
    "sd1": Embedding("<my-cat>", {"clip_l": vectors(3, 768)}, METADATA),
    "sd2": Embedding("<my-cat>", {"clip_h": vectors(2, 1024)}, METADATA),
    "sdxl": Embedding("<my-cat>", {"clip_l": vectors(2, 768), "clip_g": vectors(2, 1280, seed=1)}, METADATA),
}


@pytest.mark.parametrize("format", EMBEDDING_FORMATS)
@pytest.mark.parametrize("family", list(EMBEDDINGS))
def test_every_writer_round_trips(tmp_path, family, format):
    # Given an embedding, when written in a format and read back
    original = EMBEDDINGS[family]
    written = save_embedding(original, tmp_path / "my-cat", format=format)
    loaded = load_embedding(written[0], family=family)
    # Then the vectors are the same
    assert_same_vectors(loaded, original.vectors)
    if family == "sdxl" and format.startswith("a1111"):
        # A1111 reads SDXL files only as bare clip_l/clip_g tensors, so the name is the file's.
        assert loaded.token == written[0].stem
    else:
        # and so are the word and how it was made
        assert loaded.token == original.token
        assert {k: loaded.metadata[k] for k in METADATA} == METADATA
        assert loaded.metadata["tool"] == "comfyui-textual-inversion" and loaded.metadata["tool_version"]


def test_safetensors_layout_and_header(tmp_path):
    # SD1/SD2 as one emb_params tensor; SDXL as clip_l + clip_g; metadata as header strings
    sd1 = save_embedding(EMBEDDINGS["sd1"], tmp_path / "sd1.safetensors")[0]
    sdxl = save_embedding(EMBEDDINGS["sdxl"], tmp_path / "sdxl.safetensors")[0]
    assert list(safetensors.torch.load_file(sd1)) == ["emb_params"]
    assert sorted(safetensors.torch.load_file(sdxl)) == ["clip_g", "clip_l"]
    with safetensors.safe_open(sdxl, "pt") as handle:
        header = handle.metadata()
    assert all(isinstance(value, str) for value in header.values())
    assert header["token"] == "<my-cat>" and header["family"] == "sdxl" and header["init_text"] == "cat"
    assert header["steps"] == "1500" and header["learning_rate"] == "0.005"
    assert header["base_model_hash"] == "a9263745" and header["tool_version"]
    # A string that looks like a number stays a string through the header
    assert load_embedding(sdxl).metadata["lr_schedule_text"] == "0.005"


def test_a1111_pt_is_a_plain_dictionary_every_host_loads_with_weights_only(tmp_path):
    path = save_embedding(EMBEDDINGS["sd1"], tmp_path / "my-cat.pt")[0]
    data = torch.load(path, weights_only=True)
    assert data["name"] == "<my-cat>" and data["step"] == 1500 and data["sd_checkpoint"] == "a9263745"
    assert data["string_to_token"] == {"*": 265}
    assert torch.equal(data["string_to_param"]["*"], EMBEDDINGS["sd1"].vectors["clip_l"])


def test_diffusers_writes_sdxl_as_a_pair_of_single_key_files(tmp_path):
    written = save_embedding(EMBEDDINGS["sdxl"], tmp_path / "learned_embeds.safetensors", format="diffusers")
    assert [p.name for p in written] == ["learned_embeds.safetensors", "learned_embeds_2.safetensors"]
    first, second = (safetensors.torch.load_file(p) for p in written)
    assert list(first) == list(second) == ["<my-cat>"]
    assert first["<my-cat>"].shape == (2, 768) and second["<my-cat>"].shape == (2, 1280)


def test_diffusers_bin_is_a_single_key_pickle(tmp_path):
    path = save_embedding(EMBEDDINGS["sd1"], tmp_path / "learned_embeds.bin")[0]
    data = torch.load(path, weights_only=True)
    assert list(data) == ["<my-cat>"] and torch.equal(data["<my-cat>"], EMBEDDINGS["sd1"].vectors["clip_l"])


def test_a_view_is_written_without_the_tensor_it_views(tmp_path):
    # Given vectors that are a row of a large table (as a trainer slicing a token-embedding matrix might hold)
    table = torch.randn(5000, 768)
    embedding = Embedding("<row>", {"clip_l": table[7:8]})
    path = save_embedding(embedding, tmp_path / "row.pt")[0]
    # Then the file holds that row, not the table
    assert path.stat().st_size < 20_000


def test_an_existing_file_is_never_overwritten_unless_asked(tmp_path):
    path = tmp_path / "mine.safetensors"
    path.write_bytes(b"something the user made")
    with pytest.raises(EmbeddingFileError, match="already exists"):
        save_embedding(EMBEDDINGS["sd1"], path)
    assert path.read_bytes() == b"something the user made"
    save_embedding(EMBEDDINGS["sd1"], path, overwrite=True)
    assert_same_vectors(load_embedding(path), EMBEDDINGS["sd1"].vectors)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.safetensors"]  # no temporary files left behind


def test_a_pair_is_not_started_when_its_second_file_exists(tmp_path):
    (tmp_path / "x_2.safetensors").write_bytes(b"keep")
    with pytest.raises(EmbeddingFileError, match="x_2.safetensors already exists"):
        save_embedding(EMBEDDINGS["sdxl"], tmp_path / "x.safetensors", format="diffusers")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_2.safetensors"]


def test_the_format_follows_the_file_name_unless_given(tmp_path):
    assert save_embedding(EMBEDDINGS["sd1"], tmp_path / "a.pt")[0].name == "a.pt"
    assert "string_to_param" in torch.load(tmp_path / "a.pt", weights_only=True)
    assert save_embedding(EMBEDDINGS["sd1"], tmp_path / "b")[0].name == "b.safetensors"
    assert save_embedding(EMBEDDINGS["sd1"], tmp_path / "c", format="a1111-pt")[0].name == "c.pt"


def test_a_file_name_contradicting_the_format_is_refused(tmp_path):
    with pytest.raises(EmbeddingFileError, match=r"a1111-pt files end in \.pt, .* Name it x\.pt"):
        save_embedding(EMBEDDINGS["sd1"], tmp_path / "x.safetensors", format="a1111-pt")
    with pytest.raises(ValueError, match="Unknown embedding format 'ckpt'"):
        save_embedding(EMBEDDINGS["sd1"], tmp_path / "x", format="ckpt")


def test_metadata_that_no_file_can_hold_is_refused_by_name(tmp_path):
    embedding = EMBEDDINGS["sd1"].with_metadata(started=object())
    with pytest.raises(EmbeddingFileError, match="'started'"):
        save_embedding(embedding, tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_describe_embedding_is_plain_json(tmp_path):
    path = save_embedding(EMBEDDINGS["sdxl"], tmp_path / "xl.safetensors")[0]
    described = describe_embedding(load_embedding(path))
    assert json.loads(json.dumps(described)) == described
    assert described["token"] == "<my-cat>" and described["family"] == "sdxl" and described["num_vectors"] == 2
    assert described["widths"] == {"clip_l": 768, "clip_g": 1280}
    assert described["metadata"]["init_text"] == "cat"
