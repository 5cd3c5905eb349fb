"""The trainer: only the pseudo-word's vectors learn; everything else stays exactly as it was."""

import dataclasses

import pytest
import torch

from textual_inversion_core.data import load_concept_folder
from textual_inversion_core.demo.pictures import draw_concept_pictures
from textual_inversion_core.errors import ConfigError
from textual_inversion_core.hosts.diffusers import load_diffusers_model
from textual_inversion_core.objective import denoising_loss
from textual_inversion_core.templates import PromptTemplates
from textual_inversion_core.training import (
    TrainingCallbacks,
    TrainingConfig,
    TrainingDiverged,
    initial_vectors,
    train_embedding,
)

RESOLUTION = 64


@pytest.fixture(scope="module")
def concept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("concept")
    draw_concept_pictures(folder, count=4, seed=0)
    return load_concept_folder(folder, resolution=RESOLUTION)


@pytest.fixture(scope="module")
def sd1(sd1_model_dir):
    return load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32")


def config(**overrides):
    return TrainingConfig(**{"token": "<ball>", "init_text": "toy", "steps": 4, "learning_rate": 5e-3, **overrides})


def weights(host):
    return {f"{name}.{key}": tensor.clone() for name, module in host.pipeline.components.items()
            if isinstance(module, torch.nn.Module) for key, tensor in module.state_dict().items()}


def test_only_the_vectors_move_and_every_model_weight_stays_bit_identical(sd1, concept):
    # Given a frozen SD1 model and its weights before training
    before = weights(sd1)
    init = initial_vectors(sd1.frozen_model(), "toy", 2)
    # When a word of two vectors is trained
    result = train_embedding(sd1.frozen_model(), concept, config(num_vectors=2))
    # Then every weight is bit-identical, no weight ever got a gradient, and only the vectors moved
    after = weights(sd1)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None and not p.requires_grad
               for m in sd1.pipeline.components.values() if isinstance(m, torch.nn.Module) for p in m.parameters())
    learned = result.embedding.vectors["clip_l"]
    assert learned.shape == (2, 768) and not torch.equal(learned, init["clip_l"])
    assert result.steps_done == 4 and len(result.losses) == 4 and not result.stopped_early


def test_the_init_word_fills_the_vectors_in_turn(sd1):
    # Given "toy" is one token of this vocabulary
    model = sd1.frozen_model()
    word = model.prompt_encoder.word_vectors("toy")["clip_l"]
    # Then three vectors all start as that token's embedding
    assert word.shape == (1, 768)
    assert torch.equal(initial_vectors(model, "toy", 3)["clip_l"], word.repeat(3, 1))


def held_out_loss(model, images, vectors, token="<ball>"):
    """The denoising loss on pictures the trainer never saw, over fixed noise, timesteps and prompts."""
    generator = torch.Generator().manual_seed(1234)
    templates = PromptTemplates("object", token)
    import random

    rng = random.Random(1234)
    with torch.no_grad():
        latents = torch.cat([model.latent_encoder.encode(i.pixels[None]) for i in images])
        total = 0.0
        for _ in range(24):
            timesteps = torch.randint(1000, (len(latents),), generator=generator)
            noise = torch.randn(latents.shape, generator=generator)
            cond = model.prompt_encoder.encode([templates.prompt("", rng) for _ in latents], token, vectors)
            total += denoising_loss(model.denoiser, latents, cond, timesteps, noise).item()
    return total / 24


def test_learned_vectors_lower_the_held_out_denoising_loss(sd1, tmp_path):
    # Given four pictures of a concept to train on and three other pictures of it held out
    draw_concept_pictures(tmp_path / "train", count=4, seed=0)
    draw_concept_pictures(tmp_path / "held_out", count=3, seed=99)
    train = load_concept_folder(tmp_path / "train", resolution=RESOLUTION)
    held_out = load_concept_folder(tmp_path / "held_out", resolution=RESOLUTION)
    model = sd1.frozen_model()
    # When the word is trained from the init word
    result = train_embedding(model, train, config(steps=60, learning_rate=2e-2, batch_size=2))
    # Then the held-out loss is lower with the learned vectors than with the init word's
    init_loss = held_out_loss(model, held_out, initial_vectors(model, "toy", 1))
    learned_loss = held_out_loss(model, held_out, result.embedding.vectors)
    assert learned_loss < init_loss


def test_the_same_seed_gives_the_same_vectors_and_another_seed_does_not(sd1, concept):
    model = sd1.frozen_model()
    first = train_embedding(model, concept, config(seed=7)).embedding.vectors["clip_l"]
    again = train_embedding(model, concept, config(seed=7)).embedding.vectors["clip_l"]
    other = train_embedding(model, concept, config(seed=8)).embedding.vectors["clip_l"]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_resuming_continues_exactly_where_the_saved_embedding_stopped(sd1, concept):
    # Given an uninterrupted 6-step run, and a 3-step run of the same settings
    model = sd1.frozen_model()
    straight = train_embedding(model, concept, config(steps=6))
    first_half = train_embedding(model, concept, config(steps=3))
    # When the 3-step embedding is resumed up to 6 steps
    resumed = train_embedding(model, concept, config(steps=6), resume=first_half.embedding)
    # Then it runs steps 4-6 only, its first step sees the same vectors and batch as step 4 of the straight run,
    # and the embedding records all 6 steps
    assert len(resumed.losses) == 3 and resumed.steps_done == 6
    assert resumed.losses[0] == pytest.approx(straight.losses[3], abs=1e-6)
    assert first_half.losses == pytest.approx(straight.losses[:3], abs=1e-6)
    assert resumed.embedding.metadata["steps"] == 6
    # and says that AdamW's moments, which the file does not hold, started afresh at step 3.
    assert first_half.embedding.metadata["optimizer_state_kept"] is False
    assert "resumed_at_steps" not in first_half.embedding.metadata
    assert resumed.embedding.metadata["resumed_at_steps"] == [3]


def test_a_resume_that_has_already_reached_the_step_count_returns_it_unchanged(sd1, concept):
    done = train_embedding(sd1.frozen_model(), concept, config(steps=2))
    again = train_embedding(sd1.frozen_model(), concept, config(steps=2), resume=done.embedding)
    assert again.losses == [] and torch.equal(again.embedding.vectors["clip_l"], done.embedding.vectors["clip_l"])


class Recorder(TrainingCallbacks):
    def __init__(self, stop_after=None):
        self.reports, self.checkpoints, self.previews, self.stop_after = [], [], [], stop_after

    def on_step(self, report):
        self.reports.append(report)

    def on_checkpoint(self, embedding, step):
        self.checkpoints.append((step, embedding.metadata["steps"]))

    def on_preview(self, embedding, step):
        self.previews.append(step)

    def should_stop(self):
        return self.stop_after is not None and len(self.reports) >= self.stop_after


def test_callbacks_report_every_step_and_checkpoint_and_preview_on_schedule(sd1, concept):
    recorder = Recorder()
    train_embedding(sd1.frozen_model(), concept,
                    config(steps=6, learning_rate="0.01:3, 0.001", checkpoint_every=2, preview_every=3), recorder)
    assert [r.step for r in recorder.reports] == [1, 2, 3, 4, 5, 6]
    assert {r.total for r in recorder.reports} == {6}
    assert [r.learning_rate for r in recorder.reports] == [0.01] * 3 + [0.001] * 3
    assert all(r.elapsed >= 0 and r.eta >= 0 for r in recorder.reports) and recorder.reports[-1].eta == 0
    # The final step is the result itself, so no checkpoint is written for it
    assert recorder.checkpoints == [(2, 2), (4, 4)]
    assert recorder.previews == [3, 6]


def test_a_stop_request_ends_training_at_the_next_step_with_what_was_learned(sd1, concept):
    recorder = Recorder(stop_after=3)
    result = train_embedding(sd1.frozen_model(), concept, config(steps=50), recorder)
    assert result.stopped_early and result.steps_done == 3 and len(result.losses) == 3
    assert result.embedding.metadata["steps"] == 3


def test_divergence_stops_with_a_clear_error_and_keeps_the_last_good_vectors(sd1, concept):
    # Given an absurd learning rate that blows the vectors up after the first step
    model = sd1.frozen_model()
    init = initial_vectors(model, "toy", 1)["clip_l"]
    # When training runs, then it stops with an error that says what to do
    with pytest.raises(TrainingDiverged, match="lower learning rate") as raised:
        train_embedding(model, concept, config(steps=10, learning_rate=1e30))
    # And the vectors it keeps are finite: the last ones whose loss was finite
    good = raised.value.last_good
    assert torch.isfinite(good.vectors["clip_l"]).all()
    assert torch.equal(good.vectors["clip_l"], init)


def test_grad_accumulation_batches_and_min_snr_all_train(sd1, concept):
    result = train_embedding(sd1.frozen_model(), concept,
                             config(steps=2, batch_size=3, grad_accum=2, min_snr_gamma=5.0, max_grad_norm=1.0,
                                    lr_schedule="cosine", warmup_steps=1, template="captions"))
    assert result.steps_done == 2 and all(torch.isfinite(torch.tensor(result.losses)))


@pytest.mark.parametrize("field, value, message", [
    ("token", "two words", "single word"),
    ("init_text", " ", "coarse word"),
    ("num_vectors", 76, "between 1 and 75"),
    ("steps", 0, "steps must be at least 1"),
    ("learning_rate", "0.1:5, x", "'x'"),
    ("template", "portrait", "object, style, captions"),
    ("norm_control", "clamp", "norm_control must be one of off, rescale, penalty"),
    ("unmasked_weight", 1.5, "unmasked_weight must be between 0"),
])
def test_bad_settings_are_refused_before_any_work_naming_the_field(sd1, concept, field, value, message):
    with pytest.raises(ValueError, match=message):
        train_embedding(sd1.frozen_model(), concept, dataclasses.replace(config(), **{field: value}))


def test_a_word_must_fit_beside_its_longest_template_in_a_prompts_75_tokens():
    # "a close-up photo of the <word>" spends 7 tokens besides the word, "a close-up painting in the style of" 9
    assert config(num_vectors=68, template="object").num_vectors == 68
    with pytest.raises(ConfigError, match="num_vectors 69 does not fit the object template.*at most 68 vectors"):
        config(num_vectors=69, template="object")
    with pytest.raises(ConfigError, match="at most 66 vectors"):
        config(num_vectors=67, template="style")


def test_sdxl_trains_both_text_encoders(sdxl_model_dir, concept):
    host = load_diffusers_model(sdxl_model_dir, device="cpu", dtype="float32")
    model = host.frozen_model()
    init = initial_vectors(model, "toy", 1)
    embedding = train_embedding(model, concept, config(steps=2)).embedding
    assert set(embedding.vectors) == {"clip_l", "clip_g"} and embedding.family == "sdxl"
    assert not torch.equal(embedding.vectors["clip_l"], init["clip_l"])
    assert not torch.equal(embedding.vectors["clip_g"], init["clip_g"])


def test_v_prediction_models_train(sd2_vpred_model_dir, concept):
    host = load_diffusers_model(sd2_vpred_model_dir, device="cpu", dtype="float32")
    assert host.prediction_type == "v_prediction"
    result = train_embedding(host.frozen_model(), concept, config(steps=2))
    assert result.embedding.family == "sd2" and result.embedding.vectors["clip_h"].shape == (1, 1024)


def norms_over_median(model, vectors):
    median = model.prompt_encoder.median_token_norms()["clip_l"]
    return vectors["clip_l"].norm(dim=1) / median


def test_rescale_keeps_every_vector_at_the_vocabularys_median_norm_and_the_file_says_so(sd1, concept):
    # Given a learning rate high enough to make the vectors grow
    model = sd1.frozen_model()
    grown = train_embedding(model, concept, config(steps=6, learning_rate=0.5, num_vectors=2)).embedding
    assert norms_over_median(model, grown.vectors).min() > 1.5
    # When the same run rescales after every step
    kept = train_embedding(model, concept, config(steps=6, learning_rate=0.5, num_vectors=2,
                                                  norm_control="rescale")).embedding
    # Then both vectors end at a typical word's norm, they still moved, and the metadata records it
    assert torch.allclose(norms_over_median(model, kept.vectors), torch.ones(2), atol=1e-5)
    assert not torch.equal(kept.vectors["clip_l"], initial_vectors(model, "toy", 2)["clip_l"])
    assert kept.metadata["norm_control"] == "rescale"
    assert kept.metadata["norm_to_median"] == {"clip_l": [1.0, 1.0]}
    assert kept.metadata["median_token_norm"]["clip_l"] == pytest.approx(
        model.prompt_encoder.median_token_norms()["clip_l"], rel=1e-4)
    assert grown.metadata["norm_to_median"]["clip_l"] == [
        round(float(r), 3) for r in norms_over_median(model, grown.vectors)]


def test_the_norm_penalty_holds_the_vectors_near_the_init_words_norm(sd1, concept):
    # Given the same fast-growing run with and without the penalty
    model = sd1.frozen_model()
    init = initial_vectors(model, "toy", 1)["clip_l"].norm()
    free = train_embedding(model, concept, config(steps=8, learning_rate=0.2)).embedding
    held = train_embedding(model, concept, config(steps=8, learning_rate=0.2, norm_control="penalty",
                                                  norm_penalty=1000.0)).embedding
    # Then the penalised word stays far closer to the init word's norm
    drift = {name: abs(e.vectors["clip_l"].norm() / init - 1).item() for name, e in (("free", free), ("held", held))}
    assert drift["held"] < drift["free"] / 3, drift
    assert held.metadata["norm_penalty"] == 1000.0


def test_a_mask_of_ones_trains_exactly_as_no_mask_and_masks_are_recorded(sd1, concept):
    # Given the concept's pictures, once with a mask of ones over each
    masked = [dataclasses.replace(image, mask=torch.ones_like(image.pixels[:1])) for image in concept]
    # When both train
    plain = train_embedding(sd1.frozen_model(), concept, config()).embedding
    ones = train_embedding(sd1.frozen_model(), masked, config(unmasked_weight=0.25)).embedding
    # Then the vectors agree, and only the masked run says it was masked
    assert torch.allclose(plain.vectors["clip_l"], ones.vectors["clip_l"], atol=1e-6)
    assert ones.metadata["masked"] is True and ones.metadata["unmasked_weight"] == 0.25
    assert "masked" not in plain.metadata


def test_a_mask_that_does_not_fit_its_picture_is_refused_naming_the_picture(sd1, concept):
    wrong = [dataclasses.replace(concept[0], mask=torch.ones(1, 8, 8)), *concept[1:]]
    with pytest.raises(ValueError, match=r"The mask of .* is 8x8 but the picture is 64x64"):
        train_embedding(sd1.frozen_model(), wrong, config())


class Advised(TrainingCallbacks):
    def __init__(self):
        self.warnings = []

    def on_warning(self, message):
        self.warnings.append(message)


def test_a_run_whose_vectors_run_away_warns_once_what_to_change(sd1, concept):
    advised = Advised()
    train_embedding(sd1.frozen_model(), concept, config(steps=6, learning_rate=2.0), advised)
    assert len(advised.warnings) == 1 and "norm of a typical word" in advised.warnings[0]
