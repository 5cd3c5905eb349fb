"""The diffusers host: a local model folder as the frozen model the trainer optimises a word against."""

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.models.attention_processor import AttnProcessor2_0

from textual_inversion_core.hosts.diffusers import load_diffusers_model
from textual_inversion_core.embedding import Embedding, EmbeddingError

FAMILIES = ["sd1", "sd2", "sdxl"]
PIPELINES = {"sd1": StableDiffusionPipeline, "sd2": StableDiffusionPipeline, "sdxl": StableDiffusionXLPipeline}
WIDTHS = {"sd1": {"clip_l": 768}, "sd2": {"clip_h": 1024}, "sdxl": {"clip_l": 768, "clip_g": 1280}}


@pytest.fixture(scope="module")
def models(request):
    """family -> (our loaded model, an independent plain diffusers pipeline of the same folder)."""
    loaded = {}

    def get(family):
        if family not in loaded:
            folder = request.getfixturevalue(f"{family}_model_dir")
            plain = PIPELINES[family].from_pretrained(folder, local_files_only=True)
            loaded[family] = (load_diffusers_model(folder, device="cpu"), plain)
        return loaded[family]

    return get


def pipeline_encoding(plain, prompt):
    """What the diffusers pipeline itself conditions on for ``prompt``: (context, pooled or None)."""
    encoded = plain.encode_prompt(prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False)
    return encoded[0], (encoded[2] if isinstance(plain, StableDiffusionXLPipeline) else None)


@pytest.mark.parametrize(
    "fixture, family, prediction_type",
    [
        ("sd1_model_dir", "sd1", "epsilon"),
        ("sd2_model_dir", "sd2", "epsilon"),
        ("sd2_vpred_model_dir", "sd2", "v_prediction"),
        ("sdxl_model_dir", "sdxl", "epsilon"),
    ],
)
def test_family_and_prediction_type_come_from_the_folder(request, fixture, family, prediction_type):
    # When a folder is loaded
    model = load_diffusers_model(request.getfixturevalue(fixture), device="cpu")
    frozen = model.frozen_model()
    # Then its family, encoders and noise schedule are those of the folder
    assert frozen.family == family and frozen.device == torch.device("cpu")
    assert frozen.prompt_encoder.encoder_widths == WIDTHS[family]
    assert frozen.denoiser.prediction_type == prediction_type
    schedule = frozen.denoiser.alphas_cumprod
    assert schedule.shape == (1000,) and schedule.dtype == torch.float32 and schedule.device.type == "cpu"
    assert torch.all(schedule[1:] < schedule[:-1])
    # And every weight is frozen, in eval mode, attending through SDPA
    for module in model.pipeline.components.values():
        if isinstance(module, torch.nn.Module):
            assert not module.training and not any(p.requires_grad for p in module.parameters())
    assert all(isinstance(p, AttnProcessor2_0) for p in model.pipeline.unet.attn_processors.values())
    # And the model hash is short and names these weights
    assert len(frozen.model_hash) == 12


def test_the_model_hash_is_stable_and_tells_models_apart(sd1_model_dir, sd2_model_dir):
    first = load_diffusers_model(sd1_model_dir, device="cpu").model_hash
    assert first == load_diffusers_model(sd1_model_dir, device="cpu").model_hash
    assert first != load_diffusers_model(sd2_model_dir, device="cpu").model_hash


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "prompt, init_text, plain_prompt",
    [
        ("a photo of a <w>", "cat", "a photo of a cat"),
        # Several occurrences of a two-vector word, one glued to punctuation
        ("<w> and a <w>, close-up", "cat dog", "cat dog and a cat dog, close-up"),
        # A prompt longer than 75 tokens is cut as the pipelines cut it
        ("a <w> " + "photo of the toy " * 20, "dog", "a dog " + "photo of the toy " * 20),
    ],
    ids=["one-vector", "repeated-two-vectors", "truncated"],
)
def test_the_injected_word_reproduces_the_pipelines_own_encoding(models, family, prompt, init_text, plain_prompt):
    # Given the word's vectors set to the vocabulary's embeddings of ordinary words
    model, plain = models(family)
    vectors = model.prompt_encoder.word_vectors(init_text)
    # When a prompt with the pseudo-word is encoded
    cond = model.prompt_encoder.encode([prompt], "<w>", vectors)
    # Then the conditioning is exactly what diffusers computes for the prompt with those words written out,
    # SDXL's pooled embedding included
    context, pooled = pipeline_encoding(plain, plain_prompt)
    assert torch.equal(cond.context, context)
    assert (cond.pooled is None) == (pooled is None)
    if pooled is not None:
        assert torch.equal(cond.pooled, pooled)


def test_a_batch_encodes_each_prompt_as_alone(models):
    model, plain = models("sdxl")
    vectors = model.prompt_encoder.word_vectors("toy")
    cond = model.prompt_encoder.encode(["a photo of <w>", "a painting in the style of <w>"], "<w>", vectors)
    for i, plain_prompt in enumerate(["a photo of toy", "a painting in the style of toy"]):
        context, pooled = pipeline_encoding(plain, plain_prompt)
        # (a batched matrix product may round differently in the last bits)
        assert torch.allclose(cond.context[i], context[0], atol=1e-5)
        assert torch.allclose(cond.pooled[i], pooled[0], atol=1e-5)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_word_vectors_are_the_vocabulary_rows_of_the_text(models, family):
    model, plain = models(family)
    vectors = model.prompt_encoder.word_vectors("cat qz")
    pairs = [("clip_l", plain.tokenizer, plain.text_encoder)]
    if family == "sdxl":
        pairs.append(("clip_g", plain.tokenizer_2, plain.text_encoder_2))
    for name, tokenizer, encoder in pairs:
        ids = tokenizer.convert_tokens_to_ids(["cat</w>", "q", "z</w>"])
        expected = encoder.get_input_embeddings().weight[ids]
        assert vectors[name].dtype == torch.float32 and torch.equal(vectors[name], expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_reach_the_vectors_and_nothing_else(models, family):
    # Given two trainable vectors
    model, _ = models(family)
    frozen = model.frozen_model()
    vectors = {name: t.repeat(2, 1).requires_grad_(True) for name, t in frozen.prompt_encoder.word_vectors("toy").items()}
    # When a denoising loss is back-propagated through the text encoders and the UNet
    cond = frozen.prompt_encoder.encode(["a photo of <w>", "a rendering of a <w>"], "<w>", vectors)
    latents = frozen.latent_encoder.encode(torch.rand(2, 3, 64, 64) * 2 - 1)
    prediction = frozen.denoiser(latents, torch.tensor([10, 900]), cond)
    prediction.square().mean().backward()
    # Then every vector has a finite, non-zero gradient and no model weight has any
    for tensor in vectors.values():
        assert torch.isfinite(tensor.grad).all() and (tensor.grad.abs().sum(dim=1) > 0).all()
    for module in model.pipeline.components.values():
        if isinstance(module, torch.nn.Module):
            assert all(p.grad is None for p in module.parameters())


def test_latents_are_the_scaled_mode_of_the_vae(models):
    model, plain = models("sdxl")
    pictures = torch.rand(1, 3, 64, 64)  # as ConceptImage holds them, in [0, 1]; the VAE sees [-1, 1]
    latents = model.latent_encoder.encode(pictures)
    expected = plain.vae.encode(pictures * 2 - 1).latent_dist.mode() * plain.vae.config.scaling_factor
    assert latents.shape == (1, 4, 8, 8) and torch.allclose(latents, expected, atol=1e-6)


def test_the_sdxl_denoiser_conditions_on_pooled_text_and_the_picture_size(models):
    # Given an SDXL conditioning and 96 px latents (12x12)
    model, plain = models("sdxl")
    cond = model.prompt_encoder.encode(["a photo of <w>"], "<w>", model.prompt_encoder.word_vectors("cat"))
    noisy, timesteps = torch.randn(1, 4, 12, 16), torch.tensor([500])
    # When the denoiser runs
    prediction = model.denoiser(noisy, timesteps, cond)
    # Then it is the UNet's output with SDXL's size conditioning (96 x 128, uncropped) and the pooled text
    expected = plain.unet(
        noisy,
        timesteps,
        encoder_hidden_states=cond.context,
        added_cond_kwargs={"text_embeds": cond.pooled, "time_ids": torch.tensor([[96.0, 128, 0, 0, 96, 128]])},
    ).sample
    assert torch.allclose(prediction, expected, atol=1e-5)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_a_preview_shows_the_word_at_the_requested_size_reproducibly(models, family):
    # Given an embedding of the word "cat" and another of "dog"
    model, _ = models(family)
    cat = Embedding("<w>", model.prompt_encoder.word_vectors("cat"))
    dog = Embedding("<w>", model.prompt_encoder.word_vectors("dog"))
    # When previews are rendered
    first = model.render_preview(cat, "a photo of <w>", seed=3, steps=2, resolution=64)
    again = model.render_preview(cat, "a photo of <w>", seed=3, steps=2, resolution=64)
    other = model.render_preview(dog, "a photo of <w>", seed=3, steps=2, resolution=64)
    # Then they are pictures of that size, the same seed gives the same picture, and the word's vectors matter
    assert first.size == (64, 64) and first.mode == "RGB"
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_a_preview_refuses_an_embedding_of_another_family(models):
    model, _ = models("sd1")
    sd2_word = Embedding("<w>", {"clip_h": torch.zeros(1, 1024)})
    with pytest.raises(EmbeddingError, match="SD1"):
        model.render_preview(sd2_word, "a photo of <w>", steps=1)


def test_vectors_must_fit_the_models_encoders(models):
    model, _ = models("sdxl")
    with pytest.raises(EmbeddingError, match="clip_l and clip_g"):
        model.prompt_encoder.encode(["a <w>"], "<w>", {"clip_l": torch.zeros(1, 768)})
    with pytest.raises(EmbeddingError, match="same number"):
        model.prompt_encoder.encode(["a <w>"], "<w>", {"clip_l": torch.zeros(1, 768), "clip_g": torch.zeros(2, 1280)})


def test_bfloat16_weights_load_and_train_the_vectors_in_float32(sdxl_model_dir):
    # Given the SDXL model loaded in bfloat16
    model = load_diffusers_model(sdxl_model_dir, device="cpu", dtype="bfloat16")
    frozen = model.frozen_model()
    assert all(p.dtype == torch.bfloat16 for p in model.pipeline.unet.parameters())
    assert model.pipeline.text_encoder_2.dtype == torch.bfloat16
    # When float32 vectors go through encoding and denoising
    vectors = {name: t.requires_grad_(True) for name, t in frozen.prompt_encoder.word_vectors("cat").items()}
    cond = frozen.prompt_encoder.encode(["a photo of <w>"], "<w>", vectors)
    latents = frozen.latent_encoder.encode(torch.zeros(1, 3, 64, 64))
    prediction = frozen.denoiser(latents, torch.tensor([300]), cond)
    prediction.square().mean().backward()
    # Then the prediction is finite float32 and the vectors get float32 gradients
    assert prediction.dtype == torch.float32 and torch.isfinite(prediction).all()
    assert all(t.grad.dtype == torch.float32 and t.grad.abs().sum() > 0 for t in vectors.values())


def test_float16_keeps_the_vae_in_float32_as_the_pipelines_do(sd1_model_dir):
    model = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float16")
    assert model.pipeline.unet.dtype == torch.float16 and model.pipeline.text_encoder.dtype == torch.float16
    assert model.pipeline.vae.dtype == torch.float32


def test_a_folder_that_is_not_a_diffusers_model_gets_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model folder"):
        load_diffusers_model(tmp_path / "missing")
    with pytest.raises(ValueError, match="model_index.json"):
        load_diffusers_model(tmp_path)
    with pytest.raises(ValueError, match="Unsupported dtype"):
        load_diffusers_model(tmp_path, dtype="int8")
