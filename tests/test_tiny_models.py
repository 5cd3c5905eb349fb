"""Random-weight models: complete diffusers folders, reproducible from a seed, with real encoder widths."""

import hashlib

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

from textual_inversion_core.demo.tiny_models import build_random_model, build_random_pipeline


def file_digests(folder):
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


def test_the_same_seed_gives_bit_identical_folders_and_another_seed_other_weights(tmp_path):
    # Given two SD1 models built from seed 0 and one from seed 1
    first = file_digests(build_random_model(tmp_path / "a", "sd1", seed=0))
    second = file_digests(build_random_model(tmp_path / "b", "sd1", seed=0))
    other = file_digests(build_random_model(tmp_path / "c", "sd1", seed=1))
    # Then every file of the first two is identical, and the other seed changes the weights but not the configs
    assert first == second
    weights = [name for name in first if name.endswith(".safetensors")]
    assert len(weights) == 3 and all(first[name] != other[name] for name in weights)
    assert all(first[name] == other[name] for name in first if name.endswith(".json"))


def test_the_global_random_state_is_left_alone(tmp_path):
    # Given a seeded global generator
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    # When a model is built in between
    build_random_pipeline("sd1", seed=5)
    # Then the caller's random stream continues as if nothing had happened
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "fixture, pipeline_class, widths, context_width",
    [
        ("sd1_model_dir", StableDiffusionPipeline, {"text_encoder": 768}, 768),
        ("sd2_model_dir", StableDiffusionPipeline, {"text_encoder": 1024}, 1024),
        ("sdxl_model_dir", StableDiffusionXLPipeline, {"text_encoder": 768, "text_encoder_2": 1280}, 2048),
    ],
)
def test_each_family_loads_offline_with_its_pipeline_at_the_real_widths(
    request, fixture, pipeline_class, widths, context_width
):
    # Given a built folder
    folder = request.getfixturevalue(fixture)
    # When diffusers loads it offline
    pipeline = pipeline_class.from_pretrained(folder, local_files_only=True)
    # Then the text encoders have the released models' token-embedding widths and the UNet attends to them
    for name, width in widths.items():
        assert getattr(pipeline, name).get_input_embeddings().weight.shape[1] == width
    assert pipeline.unet.config.cross_attention_dim == context_width
    # And the VAE downsamples eight-fold: 64 px pictures become 8x8 latents with 4 channels
    latents = pipeline.vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mode()
    assert latents.shape == (1, 4, 8, 8)
    assert pipeline.unet.config.sample_size * pipeline.vae_scale_factor == 64
    assert pipeline.scheduler.config.prediction_type == "epsilon"


def test_sdxl_has_the_pooled_projection_and_size_conditioning(sdxl_model_dir):
    pipeline = StableDiffusionXLPipeline.from_pretrained(sdxl_model_dir, local_files_only=True)
    assert pipeline.text_encoder_2.config.projection_dim == 1280
    assert pipeline.unet.config.addition_embed_type == "text_time"
    # Then a generation runs through the pooled embedding and the six size numbers
    image = pipeline("a photo of a cat", num_inference_steps=2, height=64, width=64).images[0]
    assert image.size == (64, 64)


def test_sd2_can_predict_velocity(sd2_vpred_model_dir):
    pipeline = StableDiffusionPipeline.from_pretrained(sd2_vpred_model_dir, local_files_only=True)
    assert pipeline.scheduler.config.prediction_type == "v_prediction"


def test_tokenizers_know_the_template_words_whole_and_spell_out_everything_else(sdxl_model_dir):
    pipeline = StableDiffusionXLPipeline.from_pretrained(sdxl_model_dir, local_files_only=True)
    for tokenizer, pad in [(pipeline.tokenizer, "<|endoftext|>"), (pipeline.tokenizer_2, "!")]:
        # Template words and init words are single tokens (CLIP's word-final forms)
        tokens = tokenizer.tokenize("A cropped photo of the Cat, a painting in the style of sculpture")
        assert tokens == [
            "a</w>", "cropped</w>", "photo</w>", "of</w>", "the</w>", "cat</w>", ",</w>", "a</w>", "painting</w>",
            "in</w>", "the</w>", "style</w>", "of</w>", "sculpture</w>",
        ]  # fmt: skip
        # Unknown words fall back to characters
        assert tokenizer.tokenize("qzx") == ["q", "z", "x</w>"]
        # Prompts are framed and padded to 77 as SD's pipelines expect, the end marker holding the highest id
        ids = tokenizer("a dog", padding="max_length", max_length=tokenizer.model_max_length).input_ids
        assert tokenizer.model_max_length == 77 and len(ids) == 77
        assert ids[0] == tokenizer.bos_token_id and ids[3] == tokenizer.eos_token_id == len(tokenizer) - 1
        assert tokenizer.pad_token == pad and ids[4:] == [tokenizer.pad_token_id] * 73


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        build_random_model(tmp_path, "sd1")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(family="sd3"), "Unknown model family"),
        (dict(family="sd1", prediction_type="sample"), "Unknown prediction type"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        build_random_model(tmp_path / "model", **arguments)
    assert not (tmp_path / "model").exists()
