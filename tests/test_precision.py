"""Precision: the fastest dtype the hardware computes natively is the default, and it trains as float32 does."""

import pytest
import torch

from textual_inversion_core.precision import weights_dtype
from textual_inversion_core.data import ConceptImage
from textual_inversion_core.hosts.diffusers import load_diffusers_model
from textual_inversion_core.precision import autocast_dtype_for, loss_scaler, native_compute_dtype
from textual_inversion_core.training import (
    TrainingConfig,
    TrainingDiverged,
    batch_loss,
    cache_latents,
    initial_vectors,
    train_embedding,
)

CPU = torch.device("cpu")


@pytest.fixture
def cpu_features(monkeypatch):
    """Pretend the CPU has (or lacks) AVX512-BF16 and AMX."""

    def set_features(avx512_bf16: bool, amx: bool):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)

    return set_features


@pytest.mark.parametrize("avx512_bf16, amx, expected", [
    (True, False, "bfloat16"),
    (False, True, "bfloat16"),
    (False, False, "float32"),  # plain AVX-512 or AVX2 only emulate bfloat16, slower than float32
])
def test_auto_computes_in_bfloat16_only_on_cpus_that_run_it_natively(cpu_features, avx512_bf16, amx, expected):
    # Given a CPU with or without hardware bfloat16
    cpu_features(avx512_bf16, amx)
    # Then the command line's --dtype auto picks bfloat16 there and float32 elsewhere
    assert weights_dtype("auto", CPU) == expected
    assert native_compute_dtype(CPU) == getattr(torch, expected)
    # and an explicit choice is always kept
    assert weights_dtype("float32", CPU) == "float32"


def test_devices_without_native_half_precision_stay_in_float32():
    assert native_compute_dtype(torch.device("meta")) == torch.float32


def test_half_precision_weights_compute_under_autocast_and_only_float16_scales_the_loss():
    # Half-precision weights run under autocast in their own dtype; float32 weights need no autocast
    assert autocast_dtype_for(torch.bfloat16) == torch.bfloat16
    assert autocast_dtype_for(torch.float16) == torch.float16
    assert autocast_dtype_for(torch.float32) is None
    # and only float16, whose gradients underflow, gets a loss scaler
    assert isinstance(loss_scaler(CPU, torch.float16), torch.amp.GradScaler)
    assert loss_scaler(CPU, torch.float16).is_enabled()
    assert not loss_scaler(CPU, torch.bfloat16).is_enabled() and not loss_scaler(CPU, None).is_enabled()


@pytest.fixture(scope="module")
def pictures():
    generator = torch.Generator().manual_seed(0)
    return [ConceptImage(torch.rand(3, 64, 64, generator=generator), "", f"picture {i}") for i in range(3)]


def loss_and_gradient(frozen):
    """The loss of one fixed batch and the gradient it gives the init vector."""
    vectors = {name: torch.nn.Parameter(v) for name, v in initial_vectors(frozen, "toy", 1).items()}
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=generator)
    noise = torch.randn(2, 4, 8, 8, generator=generator)
    prompts = ["a photo of a <w>", "a rendering of a <w>"]
    loss = batch_loss(frozen, latents, prompts, "<w>", vectors, torch.tensor([100, 700]), noise)
    loss.backward()
    return loss.item(), vectors["clip_l"].grad.flatten()


def test_bfloat16_gives_the_float32_loss_and_gradient_to_within_its_precision(sd1_model_dir):
    # Given the same SD1 model stored and computed in float32, and in bfloat16 as the default on such CPUs
    full = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32").frozen_model()
    half = load_diffusers_model(sd1_model_dir, device="cpu", dtype="bfloat16").frozen_model()
    assert full.autocast_dtype is None and half.autocast_dtype == torch.bfloat16
    # When one batch's loss and gradient are computed in each
    full_loss, full_grad = loss_and_gradient(full)
    half_loss, half_grad = loss_and_gradient(half)
    # Then bfloat16 reproduces them to within its 8-bit mantissa
    assert half_loss == pytest.approx(full_loss, rel=2e-2)
    assert torch.nn.functional.cosine_similarity(full_grad, half_grad, dim=0) > 0.98


def test_float16_trains_through_the_loss_scaler(sd1_model_dir, pictures):
    # Given the model in float16 (as on GPUs without bfloat16), which trains with its loss scaled
    model = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float16")
    frozen = model.frozen_model()
    assert frozen.autocast_dtype == torch.float16
    # When a word is trained
    config = TrainingConfig(token="<w>", init_text="toy", steps=20, learning_rate=5e-2)
    result = train_embedding(frozen, pictures, config)
    # Then training never reports divergence, every loss is finite, and the vectors learned
    start = initial_vectors(frozen, "toy", 1)["clip_l"]
    learned = result.embedding.vectors["clip_l"]
    assert result.steps_done == 20 and all(torch.isfinite(torch.tensor(result.losses)))
    assert learned.dtype == torch.float32 and torch.isfinite(learned).all() and not torch.equal(learned, start)


def test_a_genuinely_diverging_float16_run_still_stops_with_the_last_good_vectors(sd1_model_dir, pictures):
    # Given float16 training whose learning rate sends the vectors to overflow
    frozen = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float16").frozen_model()
    config = TrainingConfig(token="<w>", init_text="toy", steps=50, learning_rate=1e30)
    # Then the trainer stops with the divergence error rather than skipping steps forever
    with pytest.raises(TrainingDiverged) as stopped:
        train_embedding(frozen, pictures, config)
    assert all(torch.isfinite(v).all() for v in stopped.value.last_good.vectors.values())


def test_a_float16_models_vae_still_encodes_in_float32(sd1_model_dir, pictures):
    # Given a float16 model, whose VAE is kept in float32 because SD's VAEs overflow in float16
    model = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float16")
    assert model.pipeline.vae.dtype == torch.float32
    # When the trainer caches the latents of a model computing in float16
    cached = cache_latents(model.frozen_model(), pictures[:1], flip=False)
    # Then they are exactly the VAE's float32 encoding
    assert torch.equal(cached, model.latent_encoder.encode(pictures[0].pixels[None]))
