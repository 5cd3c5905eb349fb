"""The command line: train, info, convert and demo, as a user runs them."""

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from textual_inversion_core import Embedding, load_embedding, save_embedding
from textual_inversion_core.cli import main
from textual_inversion_core.hosts.diffusers import load_diffusers_model
from textual_inversion_core.demo.pictures import draw_concept_pictures


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    draw_concept_pictures(folder, count=3)
    return folder


def train(model_dir, pictures, out, *extra):
    return main(["train", "--model", str(model_dir), "--images", str(pictures), "--token", "<ball>",
                 "--init", "toy", "--out", str(out), "--resolution", "64", "--steps", "3", "--device", "cpu",
                 *extra])


@pytest.mark.parametrize("family, widths", [
    ("sd1", {"clip_l": 768}),
    ("sd2", {"clip_h": 1024}),
    ("sdxl", {"clip_l": 768, "clip_g": 1280}),
])
def test_train_writes_an_embedding_and_its_loss_plot_for_every_family(request, pictures, tmp_path, family, widths):
    # Given a local diffusers model of the family and a folder of pictures
    model_dir = request.getfixturevalue(f"{family}_model_dir")
    out = tmp_path / "ball.safetensors"
    # When the word is trained from the command line with two vectors
    assert train(model_dir, pictures, out, "--vectors", "2") == 0
    # Then the embedding has the family's encoders and the metadata of the run, and a loss plot lies beside it
    embedding = load_embedding(out)
    assert embedding.token == "<ball>" and embedding.family == family
    assert {name: v.shape for name, v in embedding.vectors.items()} == {n: (2, w) for n, w in widths.items()}
    assert embedding.metadata["steps"] == 3 and embedding.metadata["init_text"] == "toy"
    with Image.open(tmp_path / "ball-loss.png") as plot:
        assert plot.size == (768, 384)


def test_train_refuses_to_overwrite_before_training_and_resume_continues(sd1_model_dir, pictures, tmp_path, capsys):
    out = tmp_path / "ball.safetensors"
    assert train(sd1_model_dir, pictures, out) == 0
    first = load_embedding(out)
    # An existing output is refused up front, naming the file and the way out
    assert train(sd1_model_dir, pictures, out) == 2
    assert "would overwrite" in capsys.readouterr().err and torch.equal(load_embedding(out).vectors["clip_l"],
                                                                       first.vectors["clip_l"])
    # Resuming to 5 steps writes a new file that records all 5 steps
    resumed = tmp_path / "resumed.safetensors"
    assert train(sd1_model_dir, pictures, resumed, "--resume", str(out), "--steps", "5") == 0
    assert load_embedding(resumed).metadata["steps"] == 5


def test_checkpoints_and_previews_land_beside_the_output(sd1_model_dir, pictures, tmp_path):
    out = tmp_path / "ball.safetensors"
    assert train(sd1_model_dir, pictures, out, "--steps", "4", "--save-every", "2", "--preview-every", "2") == 0
    assert load_embedding(tmp_path / "ball-step2.safetensors").metadata["steps"] == 2
    assert not (tmp_path / "ball-step4.safetensors").exists()  # the final step is the output itself
    for step in (2, 4):
        with Image.open(tmp_path / f"ball-preview-step{step}.png") as preview:
            assert preview.size == (300 + 132, 132)  # one labelled row, the 64 px picture scaled to 128


def test_validation_renders_every_prompt_and_keeps_each_steps_word(sd1_model_dir, pictures, tmp_path, capsys):
    # Given two validation prompts, a negative prompt and a CFG scale, every 2 of 6 steps
    out = tmp_path / "ball.safetensors"
    assert train(sd1_model_dir, pictures, out, "--steps", "6", "--preview-every", "2",
                 "--preview-prompt", "a photo of [name]", "--preview-prompt", "<ball> on a beach",
                 "--preview-negative", "blurry", "--preview-cfg", "5") == 0
    # Then each validation is a grid with a row per prompt, and the word of its step lies beside it
    for step in (2, 4, 6):
        with Image.open(tmp_path / f"ball-preview-step{step}.png") as grid:
            assert grid.size == (300 + 132, 2 * 132)
    for step in (2, 4):
        assert load_embedding(tmp_path / f"ball-step{step}.safetensors").metadata["steps"] == step
    assert not (tmp_path / "ball-step6.safetensors").exists()
    # And a second run refuses up front to overwrite any of them, the kept words included
    out.unlink()
    assert train(sd1_model_dir, pictures, out, "--steps", "6", "--preview-every", "4") == 2
    assert "ball-step4.safetensors" in capsys.readouterr().err and not out.exists()


def test_bad_settings_exit_2_with_the_reason(sd1_model_dir, pictures, tmp_path, capsys):
    assert train(sd1_model_dir, pictures, tmp_path / "x.safetensors", "--lr", "0.1:5, fast") == 2
    assert "'fast'" in capsys.readouterr().err
    assert train(sd1_model_dir, tmp_path / "missing", tmp_path / "x.safetensors") == 2
    assert "does not exist" in capsys.readouterr().err


def test_info_and_convert(sd1_model_dir, pictures, tmp_path, capsys):
    out = tmp_path / "ball.safetensors"
    assert train(sd1_model_dir, pictures, out) == 0
    capsys.readouterr()
    # info --json describes the word for machines
    assert main(["info", str(out), "--json"]) == 0
    description = json.loads(capsys.readouterr().out)
    assert description["token"] == "<ball>" and description["num_vectors"] == 1
    assert description["widths"] == {"clip_l": 768} and description["metadata"]["steps"] == 3
    # convert to A1111 .pt keeps the vectors, and refuses to overwrite
    pt = tmp_path / "ball.pt"
    assert main(["convert", str(out), str(pt)]) == 0
    assert torch.equal(load_embedding(pt).vectors["clip_l"], load_embedding(out).vectors["clip_l"])
    assert main(["convert", str(out), str(pt)]) == 2


def test_info_with_a_model_reads_the_vectors_against_its_vocabulary(sd1_model_dir, sdxl_model_dir, tmp_path, capsys):
    # Given an embedding whose vectors are the model's own token embeddings of "cat", and of "dog" made 3x longer,
    rows = load_diffusers_model(sd1_model_dir, device="cpu").prompt_encoder.word_vectors("cat dog")["clip_l"]
    embedding = Embedding("<pet>", {"clip_l": rows * torch.tensor([[1.0], [3.0]])})
    path = save_embedding(embedding, tmp_path / "pet.safetensors")[0]
    # when info reads it against the model,
    assert main(["info", str(path), "--model", str(sd1_model_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # then each vector lies nearest the word it was taken from, its norm given against the median token's,
    clip_l = report["encoders"]["clip_l"]
    cat, dog = clip_l["vectors"]
    assert cat["nearest"][0] == {"word": "cat", "cosine": 1.0} and dog["nearest"][0]["word"] == "dog"
    assert dog["norm"] == pytest.approx(3 * rows[1].norm().item(), rel=1e-3)
    assert dog["norm_to_median"] == pytest.approx(dog["norm"] / clip_l["median_token_norm"], rel=1e-3)
    assert report["model_fit"] is None and report["token"] == "<pet>"
    # and against an SDXL model the text says that the embedding does not fit it.
    assert main(["info", str(path), "--model", str(sdxl_model_dir)]) == 0
    assert "does not fit this model: The embedding '<pet>' has vectors for clip_l" in capsys.readouterr().out


def test_info_on_a_file_it_refuses_exits_non_zero_with_the_reason(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00\x01")
    run = subprocess.run([sys.executable, "-m", "textual_inversion_core", "info", str(broken)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "broken.safetensors" in run.stderr


@pytest.fixture(scope="module")
def clip_vision_dir(tmp_path_factory):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    folder = tmp_path_factory.mktemp("clip-vision")
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return folder


def test_evaluate_scores_the_word_against_its_init_word_with_a_local_clip_vision_model(clip_vision_dir, tmp_path,
                                                                                        capsys):
    # Given the concept's pictures, "generated" copies of them, and blank pictures for the init word
    concept, word, init = (tmp_path / n for n in ("concept", "word", "init"))
    draw_concept_pictures(concept, count=3, seed=0)
    draw_concept_pictures(word, count=3, seed=0)
    init.mkdir()
    for i in range(3):
        Image.new("RGB", (96, 80), (250, 250, 250)).save(init / f"blank{i}.png")
    # When evaluated with a CLIP vision folder
    args = ["evaluate", "--clip-vision", str(clip_vision_dir), "--concept", str(concept), "--generated", str(word),
            "--init-generated", str(init)]
    assert main([*args, "--json"]) == 0
    score = json.loads(capsys.readouterr().out)
    # Then the word's pictures (the concept's own) score above the init word's, and the text says both
    assert score["similarity"] > score["init_similarity"] and score["generated"] == 3
    assert main(args) == 0
    assert "with the init word" in capsys.readouterr().out


def test_evaluate_without_a_clip_vision_model_says_what_to_give(tmp_path, capsys):
    assert main(["evaluate", "--clip-vision", str(tmp_path), "--concept", str(tmp_path), "--generated",
                 str(tmp_path), "--init-generated", str(tmp_path)]) == 2
    assert "not a CLIP vision model folder" in capsys.readouterr().err


def test_lora_steps_write_one_lora_file_carrying_the_word_and_the_word_alone_beside_it(sdxl_model_dir, pictures,
                                                                                      tmp_path):
    # Given an SDXL model, when a word is trained and then a LoRA around it, all from one command
    out = tmp_path / "ball.safetensors"
    assert train(sdxl_model_dir, pictures, out, "--lora-steps", "2", "--lora-rank", "2") == 0
    # Then the file is a kohya LoRA with the word bundled for both text encoders, and the word alone is beside it
    from safetensors import safe_open

    with safe_open(str(out), "pt") as handle:
        keys, header = set(handle.keys()), handle.metadata()
    assert {"bundle_emb.<ball>.clip_l", "bundle_emb.<ball>.clip_g"} <= keys
    assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in keys)
    assert header["ss_network_dim"] == "2" and header["lora_steps"] == "2" and header["steps"] == "3"
    word = load_embedding(tmp_path / "ball-word.safetensors")
    assert set(word.vectors) == {"clip_l", "clip_g"} and word.metadata["steps"] == 3


def test_a_saved_word_goes_on_into_the_lora_stage_at_its_own_step_count(sd1_model_dir, pictures, tmp_path):
    # Given a word trained for 3 steps
    assert train(sd1_model_dir, pictures, tmp_path / "ball.safetensors") == 0
    # When it is resumed with --lora-steps and no --steps
    out = tmp_path / "ball-lora.safetensors"
    assert main(["train", "--model", str(sd1_model_dir), "--images", str(pictures), "--token", "<ball>", "--init",
                 "toy", "--out", str(out), "--resolution", "64", "--device", "cpu", "--lora-steps", "2",
                 "--resume", str(tmp_path / "ball.safetensors")]) == 0
    # Then only the two LoRA steps ran, around the saved word unchanged
    from textual_inversion_core.formats.pivotal_lora import load_pivotal_lora

    lora = load_pivotal_lora(out)
    assert lora.metadata["steps"] == 3 and lora.metadata["lora_steps"] == 2
    assert torch.equal(lora.embedding.vectors["clip_l"], load_embedding(tmp_path / "ball.safetensors").vectors["clip_l"])
