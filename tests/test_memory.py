"""Memory: the UNet is read tensor by tensor straight into the dtype it computes in, and a run without previews
frees the VAE once the pictures are encoded."""

import json
import shutil

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file, save_file

from textual_inversion_core.data import ConceptImage
from textual_inversion_core.hosts.diffusers import load_diffusers_model
from textual_inversion_core.hosts.diffusers.weights import read_safetensors
from textual_inversion_core.training import TrainingConfig, train_embedding

UNET_FILE = "diffusion_pytorch_model.safetensors"


def assert_same_weights(ours: torch.nn.Module, theirs: torch.nn.Module, dtype: torch.dtype) -> None:
    ours, theirs = ours.state_dict(), theirs.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(ours[k].dtype == dtype and torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_unet_holds_exactly_the_weights_diffusers_loads(sd1_model_dir, dtype):
    # Given a diffusers folder, when it is loaded for training in a dtype
    model = load_diffusers_model(sd1_model_dir, device="cpu", dtype=dtype)
    # Then its UNet equals diffusers' own loading in that dtype, weight for weight, and is ready to use
    theirs = UNet2DConditionModel.from_pretrained(sd1_model_dir / "unet", torch_dtype=dtype)
    assert_same_weights(model.pipeline.unet, theirs, dtype)
    assert not any(p.is_meta or p.requires_grad for p in model.pipeline.unet.parameters())


def test_a_sharded_unet_loads_from_its_index(sd1_model_dir, tmp_path):
    # Given a copy of the folder whose UNet is split in two files with an index, as large models are saved
    folder = tmp_path / "sharded"
    shutil.copytree(sd1_model_dir, folder)
    state = load_file(folder / "unet" / UNET_FILE)
    (folder / "unet" / UNET_FILE).unlink()
    names = sorted(state)
    shards = {"part-1.safetensors": names[::2], "part-2.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, folder / "unet" / file)
    index = {"weight_map": {k: file for file, keys in shards.items() for k in keys}}
    (folder / "unet" / f"{UNET_FILE}.index.json").write_text(json.dumps(index))
    # When it is loaded, then every weight comes from its shard
    model = load_diffusers_model(folder, device="cpu", dtype="bfloat16")
    ours = model.pipeline.unet.state_dict()
    assert all(torch.equal(ours[k], state[k].to(torch.bfloat16)) for k in names)


def test_a_truncated_weights_file_is_named_in_the_error(sd1_model_dir, tmp_path):
    # Given a UNet file cut short (an interrupted download)
    broken = tmp_path / UNET_FILE
    data = (sd1_model_dir / "unet" / UNET_FILE).read_bytes()
    broken.write_bytes(data[: len(data) - 1000])
    # Then reading it says which file is broken and what to do
    with pytest.raises(ValueError, match=f"{UNET_FILE} is truncated.*again"):
        read_safetensors([broken], torch.float32)


def test_integer_tensors_keep_their_dtype(tmp_path):
    # Given a file with a float and an integer tensor (older CLIP checkpoints store position ids)
    file = tmp_path / "mixed.safetensors"
    save_file({"weight": torch.randn(3, 2), "position_ids": torch.arange(5)[None]}, file)
    # When it is read as bfloat16, then only the float tensor is converted
    state = read_safetensors([file], torch.bfloat16)
    assert state["weight"].dtype == torch.bfloat16 and state["position_ids"].dtype == torch.int64
    assert torch.equal(state["position_ids"], torch.arange(5)[None])


def test_a_run_without_previews_frees_the_vae_once_the_latents_are_cached(sd1_model_dir):
    # Given a model whose VAE may be released once the pictures are encoded, as the command line loads it
    model = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32")
    pictures = [ConceptImage(torch.rand(3, 64, 64), "", "picture")]
    # When a word trains with no previews asked for
    frozen = model.frozen_model(release_vae_when_cached=True)
    result = train_embedding(frozen, pictures, TrainingConfig("<w>", "toy", steps=2))
    # Then it trained, and the VAE holds no memory any more; encoding now says why it cannot
    assert result.steps_done == 2
    assert all(p.is_meta for p in model.pipeline.vae.parameters())
    with pytest.raises(RuntimeError, match="VAE was released"):
        model.latent_encoder.encode(torch.zeros(1, 3, 64, 64))


def test_a_run_with_previews_keeps_the_vae(sd1_model_dir):
    model = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32")
    pictures = [ConceptImage(torch.rand(3, 64, 64), "", "picture")]
    frozen = model.frozen_model(release_vae_when_cached=True)
    train_embedding(frozen, pictures, TrainingConfig("<w>", "toy", steps=2, preview_every=2))
    assert not any(p.is_meta for p in model.pipeline.vae.parameters())


def test_a_model_loaded_through_the_library_keeps_its_vae_unless_asked(sd1_model_dir):
    model = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32")
    pictures = [ConceptImage(torch.rand(3, 64, 64), "", "picture")]
    train_embedding(model.frozen_model(), pictures, TrainingConfig("<w>", "toy", steps=1))
    assert not any(p.is_meta for p in model.pipeline.vae.parameters())
