"""Pivotal tuning: a low-rank adapter trained around a learned word, and the one file that carries both."""

import pytest
import torch

from textual_inversion_core.errors import ConfigError
from textual_inversion_core.formats import EmbeddingFileError, load_embedding
from textual_inversion_core.formats.pivotal_lora import load_pivotal_lora, save_pivotal_lora
from textual_inversion_core.hosts.diffusers import load_diffusers_model
from textual_inversion_core.lora import AdapterError, LowRankAdapter, PivotalLora, model_layers
from textual_inversion_core.training import TrainingCallbacks, TrainingConfig, train_embedding


@pytest.fixture(scope="module")
def sd1(sd1_model_dir):
    return load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32")


def config(**overrides):
    return TrainingConfig(**{"token": "<ball>", "init_text": "toy", "steps": 2, "learning_rate": 5e-3,
                             "lora_steps": 3, "lora_learning_rate": 1e-2, **overrides})


def weights(host):
    return {f"{name}.{key}": tensor.clone() for name, module in host.pipeline.components.items()
            if isinstance(module, torch.nn.Module) for key, tensor in module.state_dict().items()}


@pytest.fixture(scope="module")
def word(sd1, concept):
    return train_embedding(sd1.frozen_model(), concept, config(lora_steps=0)).embedding


def unet_prediction(host, seed=0):
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(1, host.pipeline.unet.config.in_channels, 8, 8, generator=generator)
    context = torch.randn(1, 77, 768, generator=generator)
    with torch.no_grad():
        return host.pipeline.unet(latents, torch.tensor([500]), encoder_hidden_states=context).sample


def test_the_lora_stage_trains_the_adapter_alone_and_every_base_weight_stays_bit_identical(sd1, concept, word):
    # Given a learned word and the model's weights before the LoRA stage
    before = weights(sd1)
    plain = unet_prediction(sd1)
    # When three LoRA steps follow the word's two
    result = train_embedding(sd1.frozen_model(), concept, config(), resume=word)
    # Then every base weight is bit-identical and none ever got a gradient
    after = weights(sd1)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for m in sd1.pipeline.components.values() if isinstance(m, torch.nn.Module)
               for p in m.parameters())
    # And the word stayed as it was (its rate in this stage is 0), the adapter learned, and its hooks are gone
    lora = result.lora
    assert isinstance(lora, PivotalLora) and result.steps_done == 5 and len(result.losses) == 3
    assert torch.equal(lora.embedding.vectors["clip_l"], word.vectors["clip_l"])
    assert any(w.abs().sum() > 0 for k, w in lora.weights.items() if k.endswith("lora_up.weight"))
    assert torch.equal(unet_prediction(sd1), plain)
    # And the file's metadata says what each stage did
    assert lora.metadata["steps"] == 2 and lora.metadata["lora_steps"] == 3 and lora.metadata["lora_rank"] == 4
    assert lora.layer_names() and all("_attn1_to_" in k or "_attn2_to_" in k for k in lora.layer_names())


def text_encoder_outputs_in_autograd(host, concept, word, **overrides):
    """Whether each of the LoRA stage's text-encoder passes was recorded for a backward pass."""
    recorded = []
    hook = host.pipeline.text_encoder.register_forward_hook(
        lambda module, args, output: recorded.append(output.last_hidden_state.requires_grad))
    try:
        result = train_embedding(host.frozen_model(), concept, config(**overrides), resume=word)
    finally:
        hook.remove()
    return result, recorded


@pytest.mark.parametrize("norm_control", ["off", "penalty"])
def test_a_fixed_word_takes_the_text_encoder_out_of_the_lora_stages_backward(sd1, concept, word, norm_control):
    # Given a LoRA stage whose word stays fixed (the default)
    result, recorded = text_encoder_outputs_in_autograd(sd1, concept, word, norm_control=norm_control)
    # Then no text-encoder pass was recorded for a backward, and the adapter still learned
    assert recorded and not any(recorded)
    assert any(w.abs().sum() > 0 for k, w in result.lora.weights.items() if k.endswith("lora_up.weight"))


@pytest.mark.parametrize("norm_control", ["off", "penalty"])
def test_the_word_can_go_on_learning_at_its_own_rate(sd1, concept, word, norm_control):
    # Given a LoRA stage that lets the word move slowly
    result, recorded = text_encoder_outputs_in_autograd(sd1, concept, word, lora_word_learning_rate=1e-3,
                                                        norm_control=norm_control)
    # Then the text encoder's passes were differentiated and the word moved
    assert recorded and all(recorded)
    assert not torch.equal(result.lora.embedding.vectors["clip_l"], word.vectors["clip_l"])


def test_one_run_trains_the_word_then_the_adapter_and_resuming_a_checkpoint_continues_exactly(sd1, concept):
    # Given a run of two word steps and three LoRA steps, checkpointed every step
    class Keep(TrainingCallbacks):
        def __init__(self):
            self.checkpoints = {}

        def on_checkpoint(self, snapshot, step):
            self.checkpoints[step] = snapshot

    keep = Keep()
    whole = train_embedding(sd1.frozen_model(), concept, config(checkpoint_every=1), keep)
    # Then the word's steps checkpoint a word and the LoRA steps a word with its adapter
    assert not isinstance(keep.checkpoints[2], PivotalLora) and isinstance(keep.checkpoints[3], PivotalLora)
    # And a run resumed from step 3's checkpoint runs steps 4-5 only, its first step seeing the word, adapter and
    # batch of the whole run's step 4 (AdamW's moments, as for a word, start afresh and the file says so)
    resumed = train_embedding(sd1.frozen_model(), concept, config(), resume=keep.checkpoints[3])
    assert len(resumed.losses) == 2 and resumed.steps_done == 5
    assert resumed.losses[0] == pytest.approx(whole.losses[3], abs=1e-6)
    assert resumed.lora.metadata["resumed_at_steps"] == [3] and resumed.lora.metadata["lora_steps"] == 3


def test_the_file_applies_in_diffusers_as_training_computed_it(sd1, concept, word, tmp_path, sd1_model_dir):
    # Given a pivotal LoRA written to one .safetensors file
    lora = train_embedding(sd1.frozen_model(), concept, config(), resume=word).lora
    path = save_pivotal_lora(lora, tmp_path / "ball")
    assert path.name == "ball.safetensors"
    # And what the UNet computes with the adapter as training applied it
    adapter = LowRankAdapter.restored(model_layers(sd1.frozen_model()), lora.weights, torch.device("cpu"))
    with adapter.attached():
        trained = unet_prediction(sd1)
    # When diffusers loads the file's adapter with its own LoRA loader and the word with its textual inversion
    # loader
    fresh = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32")
    read = load_pivotal_lora(path)
    fresh.pipeline.load_lora_weights(read.lora_weights())
    fresh.pipeline.load_textual_inversion(read.embedding.vectors["clip_l"], token=read.token,
                                          tokenizer=fresh.pipeline.tokenizer, text_encoder=fresh.pipeline.text_encoder)
    # Then its UNet computes what training did, and the word is the trained one
    torch.testing.assert_close(unet_prediction(fresh), trained, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(unet_prediction(fresh), unet_prediction(sd1))
    token_id = fresh.pipeline.tokenizer.convert_tokens_to_ids(read.token)
    assert torch.equal(fresh.pipeline.text_encoder.get_input_embeddings().weight[token_id], word.vectors["clip_l"][0])
    assert read.metadata["lora_steps"] == 3 and read.rank == 4


def test_the_embedding_loaders_read_the_word_a_pivotal_file_carries(sd1, concept, word, tmp_path):
    # Given a pivotal LoRA file (where users may also drop it: ComfyUI reads bundled words from its embeddings
    # folder), when it is read as an embedding, then it is the word, with its metadata
    lora = train_embedding(sd1.frozen_model(), concept, config(lora_steps=1), resume=word).lora
    path = save_pivotal_lora(lora, tmp_path / "ball.safetensors")
    read = load_embedding(path)
    assert read.token == "<ball>" and torch.equal(read.vectors["clip_l"], word.vectors["clip_l"])
    assert read.metadata["lora_steps"] == 1


def test_the_file_is_never_overwritten_unless_asked(sd1, concept, word, tmp_path):
    lora = train_embedding(sd1.frozen_model(), concept, config(lora_steps=1), resume=word).lora
    path = save_pivotal_lora(lora, tmp_path / "ball.safetensors")
    stamp = path.read_bytes()
    with pytest.raises(EmbeddingFileError, match="already exists"):
        save_pivotal_lora(lora, path)
    assert path.read_bytes() == stamp


def test_an_adapter_for_other_layers_is_refused_naming_the_layer(sd1, concept, word):
    lora = train_embedding(sd1.frozen_model(), concept, config(lora_steps=1), resume=word).lora
    # Given the adapter was trained on attention alone, when a run resumes it with the feed-forward layers too
    with pytest.raises(AdapterError, match="has no weights for lora_unet_.*ff_net"):
        train_embedding(sd1.frozen_model(), concept, config(lora_steps=2, lora_layers="attention+feedforward"),
                        resume=lora)


@pytest.mark.parametrize("field, value, message", [
    ("lora_rank", 0, "lora_rank must be at least 1"),
    ("lora_layers", "everything", "lora_layers must be one of attention"),
    ("lora_learning_rate", 0.0, "lora_learning_rate must be positive"),
    ("lora_word_learning_rate", -1.0, "lora_word_learning_rate must be 0"),
    ("lora_steps", -1, "lora_steps must be 0"),
])
def test_bad_lora_settings_are_refused_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        config(**{field: value})


def test_the_lora_stage_follows_the_schedule_over_its_own_steps(sd1, concept, word):
    # Given a linear schedule, when a word's two steps are followed by three LoRA steps
    class Rates(TrainingCallbacks):
        def __init__(self):
            self.rates = {}

        def on_step(self, report):
            self.rates[report.step] = report.learning_rate

    rates = Rates()
    train_embedding(sd1.frozen_model(), concept, config(lr_schedule="linear"), rates, resume=word)
    # Then the adapter's rate starts at lora_learning_rate and falls over the stage's own three steps
    assert rates.rates[3] == pytest.approx(1e-2)
    assert rates.rates[3] > rates.rates[4] > rates.rates[5] > 0


def text_encoder_output(host, token_ids=(49406, 320, 1125, 539, 49407)):
    ids = torch.tensor([list(token_ids) + [49407] * (77 - len(token_ids))])
    ids = ids.clamp(max=host.pipeline.text_encoder.config.vocab_size - 1)
    with torch.no_grad():
        return host.pipeline.text_encoder(ids).last_hidden_state


def test_an_adapter_on_the_text_encoder_too_applies_in_diffusers_as_training_computed_it(sd1, concept, word, tmp_path,
                                                                                      sd1_model_dir):
    # Given a LoRA on the UNet's and the text encoder's attention, written to its file
    lora = train_embedding(sd1.frozen_model(), concept, config(lora_layers="attention+text_encoder"), resume=word).lora
    assert any(name.startswith("lora_te_text_model_encoder_layers_") for name in lora.layer_names())
    plain = text_encoder_output(sd1)
    adapter = LowRankAdapter.restored(model_layers(sd1.frozen_model()), lora.weights, torch.device("cpu"))
    with adapter.attached():
        trained = text_encoder_output(sd1)
    assert not torch.allclose(trained, plain)
    # When diffusers' LoRA loader reads the file's adapter
    fresh = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32")
    fresh.pipeline.load_lora_weights(load_pivotal_lora(save_pivotal_lora(lora, tmp_path / "ball")).lora_weights())
    # Then its text encoder computes what training did
    torch.testing.assert_close(text_encoder_output(fresh), trained, rtol=1e-4, atol=1e-5)
