"""The optimisation loop: learn the vectors of one pseudo-word against a frozen diffusion model.

Only the ``n × width`` vectors of each text encoder are parameters. The concept pictures are encoded to latents
once; every step then draws a batch of cached latents, a prompt per latent from the templates, noise and
timesteps, and takes an AdamW step on the vectors alone. Each step's randomness is derived from (seed, step), so
a run resumed from a saved embedding draws exactly the batches the uninterrupted run would have drawn.

AdamW's moments are not kept with the word, so a resumed run starts them afresh (its first updates move every
coordinate by about the learning rate, as the very first step does), and the embedding's metadata says so:
``optimizer_state_kept`` false, and the steps the moments restarted at in ``resumed_at_steps``. Stored in the
embedding file, the moments would be extra tensors that other loaders refuse or take for the vectors; a file
beside it would not reach a resume in ComfyUI, where the word travels through the graph, not as a file.

With ``lora_steps`` the same loop goes on into pivotal tuning: from the step after the word's last, a low-rank
adapter on the UNet trains too (the word fixed, or at its own small rate), and every snapshot is a
``PivotalLora``; the conveniences above (schedules, accumulation, stopping, resuming, divergence) hold for both
stages alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from typing import Sequence

import torch

from ..data import ConceptImage, ConceptDataError
from ..embedding import Embedding
from ..errors import ConfigError, UserError
from ..interfaces import FrozenModel
from ..lora import LowRankAdapter, PivotalLora, Snapshot, model_layers, select_layers, steps_trained
from ..objective import denoising_loss
from ..precision import autocast, loss_scaler, to_device
from ..templates import PromptTemplates
from .advice import TrainingAdvisor
from .callbacks import StepReport, TrainingCallbacks
from .config import TrainingConfig
from .norm_control import norm_penalty, norm_ratios, rescale_to

Vectors = dict[str, torch.Tensor]


@dataclasses.dataclass
class TrainingResult:
    embedding: Embedding
    losses: list[float]  # one per step of this run
    stopped_early: bool
    steps_done: int  # counted from the start of the word's training, resumed steps included
    lora: PivotalLora | None = None  # the word and its adapter, once the run reached the LoRA stage

    @property
    def first_step(self) -> int:
        """The step number of ``losses[0]``: 1, or the step after the one a resumed run started from."""
        return self.steps_done - len(self.losses) + 1


class TrainingDiverged(UserError):
    """The loss or the vectors became NaN/inf; ``last_good`` holds the vectors from before that step."""

    def __init__(self, message: str, last_good: Snapshot):
        super().__init__(message)
        self.last_good = last_good


def initial_vectors(model: FrozenModel, init_text: str, num_vectors: int) -> Vectors:
    """The init word's token embeddings, repeated in turn to fill ``num_vectors`` rows (as A1111 does)."""
    words = model.prompt_encoder.word_vectors(init_text)
    vectors = {}
    for name, rows in words.items():
        if rows.shape[0] == 0:
            raise ConfigError(f"init_text {init_text!r} gives no tokens; use a plain word such as 'cat'.")
        index = torch.arange(num_vectors) % rows.shape[0]
        vectors[name] = rows.detach().float().cpu()[index].clone()
    return vectors


@torch.no_grad()
def cache_latents(model: FrozenModel, images: Sequence[ConceptImage], flip: bool) -> torch.Tensor:
    """Encode every picture (and its mirror image) once; the VAE is never needed again during training."""
    if not images:
        raise ConceptDataError("No concept pictures were given; training needs 3-5 pictures of the concept.")
    sizes = {tuple(image.pixels.shape) for image in images}
    if len(sizes) != 1:
        raise ConceptDataError(f"All concept pictures must share one size; got {sorted(sizes)}.")
    latents = []
    for image in images:
        pixels = image.pixels.unsqueeze(0)
        # One picture per VAE call: at 512 px a pair would add ~0.4 GB to the run's peak memory, for no speed.
        for view in (pixels, pixels.flip(-1)) if flip else (pixels,):
            latents.append(model.latent_encoder.encode(view))
    return torch.cat(latents)


def cache_masks(images: Sequence[ConceptImage], latent_size: Sequence[int], flip: bool) -> torch.Tensor | None:
    """Each picture's mask (and its mirror image's) on the latent grid, in the order of ``cache_latents``, as the
    share of each latent pixel's area that is masked in; None when no picture has a mask (a picture without one
    counts everywhere)."""
    if all(image.mask is None for image in images):
        return None
    masks = []
    for image in images:
        mask = image.mask if image.mask is not None else torch.ones_like(image.pixels[:1])
        if mask.shape[1:] != image.pixels.shape[1:]:
            raise ConceptDataError(
                f"The mask of {image.name or 'a picture'} is {mask.shape[2]}x{mask.shape[1]} but the picture is "
                f"{image.pixels.shape[2]}x{image.pixels.shape[1]}; give masks of the pictures' own size."
            )
        small = torch.nn.functional.interpolate(mask[None].float(), size=tuple(latent_size), mode="area")
        masks += [small, small.flip(-1)] if flip else [small]
    return torch.cat(masks)


def batch_loss(model: FrozenModel, latents: torch.Tensor, prompts: Sequence[str], token: str, vectors: Vectors,
               timesteps: torch.Tensor, noise: torch.Tensor, min_snr_gamma: float | None = None,
               pixel_weights: torch.Tensor | None = None, alphas_cumprod: torch.Tensor | None = None) -> torch.Tensor:
    """The denoising loss of one batch, its forward passes in the model's compute dtype; backward from it reaches
    ``vectors`` alone. All the work of a training step but the optimiser's is here and in its backward."""
    with autocast(model.device, model.autocast_dtype):
        cond = model.prompt_encoder.encode(prompts, token, vectors)
        return denoising_loss(model.denoiser, latents, cond, timesteps, noise, min_snr_gamma, pixel_weights,
                              alphas_cumprod)


def train_embedding(
    model: FrozenModel,
    images: Sequence[ConceptImage],
    config: TrainingConfig,
    callbacks: TrainingCallbacks | None = None,
    resume: Snapshot | None = None,
) -> TrainingResult:
    callbacks = callbacks or TrainingCallbacks()
    device = model.device

    # ---- the starting point: the init word, or where a saved word (and its adapter) stopped
    adapter_weights = None
    if isinstance(resume, PivotalLora):
        adapter_weights, resume = resume.weights, resume.embedding
    if resume is not None:
        resume.check_family(model.family)
        start = {name: resume.vectors[name] for name in model.prompt_encoder.encoder_widths}
        steps_done = steps_trained(resume)
        base_metadata = {k: v for k, v in resume.metadata.items() if not k.startswith(("loss_", "lora_"))}
    else:
        start = initial_vectors(model, config.init_text, config.num_vectors)
        steps_done, base_metadata = 0, {}
    params = {name: torch.nn.Parameter(v.to(device, torch.float32).clone()) for name, v in start.items()}
    losses: list[float] = []
    medians = model.prompt_encoder.median_token_norms()
    if config.norm_control == "penalty":
        rows = next(iter(start.values())).shape[0]
        init_norms = {name: v.to(device).norm(dim=1)
                      for name, v in initial_vectors(model, config.init_text, rows).items()}

    adapter: LowRankAdapter | None = None

    def word(vectors: Vectors, adapter_copy: dict | None, steps: int, losses: list[float]) -> Snapshot:
        adapter_state = None if adapter_copy is None else adapter.state_dict(adapter_copy)
        return snapshot(config, model, vectors, adapter_state, steps, losses, base_metadata, medians)

    def state() -> tuple[Vectors, dict | None, int]:
        # On the device, as the vectors are: taken every step for the divergence guard, so no copy to the CPU
        # (and no wait for the device) until a snapshot is actually made.
        return clone(params), None if adapter is None else adapter.copy(), steps_done

    def result(stopped: bool) -> TrainingResult:
        final = word(*state(), losses)
        if isinstance(final, PivotalLora):
            return TrainingResult(final.embedding, losses, stopped, steps_done, final)
        return TrainingResult(final, losses, stopped, steps_done)

    if steps_done >= config.total_steps:
        if adapter_weights is not None:
            adapter = LowRankAdapter(select_layers(model_layers(model), config.lora_layers),
                                     config.lora_rank, lora_alpha(config), device, weights=adapter_weights)
        return result(False)
    if resume is not None:
        base_metadata["resumed_at_steps"] = [*base_metadata.get("resumed_at_steps", []), steps_done]

    # ---- the pictures, encoded once
    latents = cache_latents(model, images, config.flip)
    masks = cache_masks(images, latents.shape[-2:], config.flip)
    # On the device once, as the latents are, not sent there again every step.
    pixel_weights = None if masks is None else \
        (config.unmasked_weight + (1 - config.unmasked_weight) * masks).to(device)
    for key in ("masked", "unmasked_weight"):  # a resumed word's, which may have been trained otherwise
        base_metadata.pop(key, None)
    if masks is not None:
        base_metadata.update(masked=True, unmasked_weight=config.unmasked_weight)
    if model.release_latent_encoder is not None and not config.preview_every:
        model.release_latent_encoder()
    callbacks.on_latents_cached()
    captions = [image.caption for image in images for _ in range(2 if config.flip else 1)]
    templates = PromptTemplates(config.template, config.token)
    schedule = config.schedule() if config.steps else None

    lora_schedule = config.lora_schedule() if config.lora_steps else None

    def word_rate(step: int) -> float:
        return schedule(step) if step <= config.steps else config.lora_word_learning_rate

    optimizer = torch.optim.AdamW(params.values(), lr=word_rate(steps_done + 1), weight_decay=0.0)
    scaler = loss_scaler(device, model.autocast_dtype)
    num_timesteps = model.denoiser.alphas_cumprod.shape[0]
    alphas_cumprod = to_device(model.denoiser.alphas_cumprod, device)
    advisor = TrainingAdvisor(config.steps)

    # The vectors (and adapter) before the current step and before the one preceding it, with their step
    # counts, for the snapshot kept when a step diverges.
    before = older = state()
    first_step, stopped, word_learns = steps_done + 1, False, True
    started = time.perf_counter()
    hooks = contextlib.ExitStack()
    try:
        for step in range(first_step, config.total_steps + 1):
            if callbacks.should_stop():
                stopped = True
                break
            if step > config.steps and adapter is None:
                # ---- the LoRA stage begins: the adapter joins the optimiser and acts in every forward pass
                adapter = LowRankAdapter(select_layers(model_layers(model), config.lora_layers),
                                         config.lora_rank, lora_alpha(config), device, seed=config.seed,
                                         weights=adapter_weights)
                hooks.enter_context(adapter.attached())
                optimizer.add_param_group({"params": adapter.parameters(), "lr": 0.0})
                word_learns = bool(config.lora_word_learning_rate)
                if not word_learns:
                    # A fixed word out of autograd: the text encoder then keeps no activations for a backward
                    # pass and runs none, which leaves the stage the memory the adapter's own inputs take.
                    for p in params.values():
                        p.requires_grad_(False)
                before = older = state()
            older, before = before, state()
            lr = word_rate(step)
            optimizer.param_groups[0]["lr"] = lr
            if adapter is not None:
                lr = optimizer.param_groups[1]["lr"] = lora_schedule(step - config.steps)

            # ---- forward and backward over the step's batches
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            prompt_rng = random.Random(config.seed * 1_000_003 + step)
            step_losses = []
            for _ in range(config.grad_accum):
                pick = torch.randint(len(latents), (config.batch_size,), generator=generator)
                timesteps = torch.randint(num_timesteps, (config.batch_size,), generator=generator)
                noise = torch.randn((config.batch_size, *latents.shape[1:]), generator=generator)
                prompts = [templates.prompt(captions[i], prompt_rng) for i in pick.tolist()]
                picked = to_device(pick, device)
                weights = None if pixel_weights is None else pixel_weights[picked]
                loss = batch_loss(model, latents[picked], prompts, config.token, params, to_device(timesteps, device),
                                  to_device(noise, device), config.min_snr_gamma, weights, alphas_cumprod)
                loss = loss / config.grad_accum
                scaler.scale(loss).backward()
                step_losses.append(loss.detach())
            step_loss = torch.stack(step_losses).sum()
            if config.norm_control == "penalty" and word_learns:
                scaler.scale(norm_penalty(params, init_norms, config.norm_penalty)).backward()

            # ---- the update; float16's scaler skips one whose gradient overflowed and lowers its scale
            scaler.unscale_(optimizer)
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]],
                                               config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if config.norm_control == "rescale":
                rescale_to(params, medians)

            # ---- a non-finite loss condemns the vectors it was computed with, so the word kept is the one
            # before them; a finite loss with a non-finite update condemns only the update. The loss, the
            # vectors' finiteness and their largest norm come back together: the step's one wait for the device.
            trained = [*params.values(), *(adapter.parameters() if adapter else [])]
            vectors_finite = torch.stack([torch.isfinite(p).all() for p in trained]).all()
            largest = torch.stack([p.detach().norm(dim=1).max() / medians[name] for name, p in params.items()]).max()
            step_loss, vectors_finite, norm_ratio = torch.stack(
                [step_loss.float(), vectors_finite.float(), largest.float()]).tolist()
            if not (math.isfinite(step_loss) and vectors_finite):
                kept, kept_adapter, kept_steps = older if not math.isfinite(step_loss) else before
                raise TrainingDiverged(
                    f"Training diverged at step {step}: the loss became {step_loss} (learning rate {lr:g}). The "
                    f"{'vectors' if kept_adapter is None else 'word and adapter'} from step {kept_steps} are kept; "
                    "resume from them with a lower learning rate.",
                    word(kept, kept_adapter, kept_steps, losses[:kept_steps - (first_step - 1)]),
                )
            steps_done = step
            losses.append(step_loss)

            # ---- what the host sees of it
            elapsed = time.perf_counter() - started
            callbacks.on_step(StepReport(step, config.total_steps, step_loss, lr, elapsed,
                                         elapsed / (step - first_step + 1) * (config.total_steps - step), norm_ratio))
            # The advice is about the word's own rate and steps.
            if step <= config.steps:
                for warning in advisor.after_step(step, step_loss, norm_ratio, lr, config.norm_control):
                    callbacks.on_warning(warning)
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.total_steps:
                callbacks.on_checkpoint(word(*state(), losses), step)
            if config.preview_every and step % config.preview_every == 0:
                callbacks.on_preview(word(*state(), losses), step)
    except callbacks.interrupted_by:
        # Raised before the update (inside a forward or backward pass) or by a hook after it: either way
        # ``params`` (and the adapter) are those of step ``steps_done``.
        stopped = True
        optimizer.zero_grad(set_to_none=True)
    finally:
        hooks.close()

    return result(stopped)


def clone(params: Vectors) -> Vectors:
    return {name: p.detach().clone() for name, p in params.items()}


def lora_alpha(config: TrainingConfig) -> float:
    return float(config.lora_rank if config.lora_alpha is None else config.lora_alpha)


def snapshot(config: TrainingConfig, model: FrozenModel, params: Vectors, adapter_state: dict | None,
             steps_done: int, losses: list[float], base_metadata: dict, medians: dict[str, float]) -> Snapshot:
    tail = losses[-max(1, len(losses) // 10):] if losses else []
    word_steps = steps_done if adapter_state is None else min(steps_done, config.steps)
    metadata = {
        **base_metadata,
        "init_text": config.init_text,
        "steps": word_steps,
        "learning_rate": str(config.learning_rate),
        "lr_schedule": config.lr_schedule,
        "batch_size": config.batch_size,
        "grad_accum": config.grad_accum,
        "template": config.template,
        "seed": config.seed,
        "optimizer": "AdamW",
        "optimizer_state_kept": False,
        "norm_control": config.norm_control,
        # Each vector's norm as a multiple of a typical word's: above 2-3 a word tends to drown its prompt.
        "norm_to_median": norm_ratios(params, medians),
        "median_token_norm": {name: round(m, 5) for name, m in medians.items()},
    }
    if config.norm_control == "penalty":
        metadata["norm_penalty"] = config.norm_penalty
    if model.model_hash:
        metadata["base_model_hash"] = model.model_hash
    if losses:
        metadata["loss_first"] = round(losses[0], 6)
        metadata["loss_last"] = round(sum(tail) / len(tail), 6)
    vectors = {name: p.detach().float().cpu().clone() for name, p in params.items()}
    if adapter_state is None:
        return Embedding(config.token, vectors, metadata)
    metadata.update(
        lora_steps=steps_done - word_steps, lora_rank=config.lora_rank, lora_alpha=lora_alpha(config),
        lora_layers=config.lora_layers, lora_learning_rate=str(config.lora_learning_rate),
        lora_word_learning_rate=str(config.lora_word_learning_rate),
    )
    return PivotalLora(Embedding(config.token, vectors, metadata), adapter_state)
