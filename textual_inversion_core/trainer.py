"""The optimisation loop: learn the vectors of one pseudo-word against a frozen diffusion model.

Only the ``n × width`` vectors of each text encoder are parameters. The concept pictures are encoded to latents
once; every step then draws a batch of cached latents, a prompt per latent from the templates, noise and
timesteps, and takes an AdamW step on the vectors alone. Each step's randomness is derived from (seed, step), so
a run resumed from a saved embedding draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from typing import Sequence

import torch

from .data import ConceptImage
from .embedding import MAX_VECTORS, Embedding, EmbeddingError
from .interfaces import FrozenModel
from .objective import denoising_loss
from .precision import loss_scaler
from .schedules import SCHEDULE_KINDS, make_schedule
from .templates import TEMPLATE_KINDS, PromptTemplates

# Chosen with bench/recovery.py (a hidden word learned from 5 latents; share of the held-out loss gap closed,
# 300 steps, batch 1): 5e-3 reached 0.9 after 40 steps on every seed tried and ended at 0.93-0.95, within 0.005
# of the best final figure; 1e-3 took 60 steps, 2e-2 40-60 with a noisier end. The benchmark plateaus by about
# 100 steps; real pictures on a trained UNet give far noisier gradients, hence ten times that by default.
DEFAULT_STEPS = 1000
DEFAULT_LEARNING_RATE = 5e-3


@dataclasses.dataclass
class TrainingConfig:
    token: str
    init_text: str
    num_vectors: int = 1
    steps: int = DEFAULT_STEPS
    learning_rate: float | str = DEFAULT_LEARNING_RATE  # a number, or A1111's "0.005:100, 1e-3:1000, 1e-5"
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    batch_size: int = 1
    grad_accum: int = 1
    max_grad_norm: float | None = None
    template: str = "object"
    seed: int = 0
    min_snr_gamma: float | None = None
    flip: bool = True
    checkpoint_every: int = 0
    preview_every: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the first field that cannot work."""
        if not self.token.strip() or any(c.isspace() for c in self.token):
            raise ValueError(f"token must be a single word such as '<my-cat>', got {self.token!r}.")
        if not self.init_text.strip():
            raise ValueError("init_text must name a coarse word for the concept, e.g. 'cat' or 'painting'.")
        if not 1 <= self.num_vectors <= MAX_VECTORS:
            raise ValueError(f"num_vectors must be between 1 and {MAX_VECTORS}, got {self.num_vectors}.")
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        for name in ("warmup_steps", "checkpoint_every", "preview_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (off) or more, got {getattr(self, name)}.")
        if self.lr_schedule not in SCHEDULE_KINDS:
            raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULE_KINDS)}, got {self.lr_schedule!r}.")
        if self.template not in TEMPLATE_KINDS:
            raise ValueError(f"template must be one of {', '.join(TEMPLATE_KINDS)}, got {self.template!r}.")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {self.max_grad_norm}.")
        if self.min_snr_gamma is not None and not self.min_snr_gamma > 0:
            raise ValueError(f"min_snr_gamma must be positive or None, got {self.min_snr_gamma}.")
        make_schedule(self.learning_rate, self.steps, self.lr_schedule, self.warmup_steps)


@dataclasses.dataclass
class StepReport:
    step: int  # 1-based
    total: int
    loss: float
    learning_rate: float
    elapsed: float  # seconds since the first step of this run began
    eta: float  # seconds still to go at the pace so far


class TrainingCallbacks:
    """Hooks a host overrides to watch, preview, checkpoint and stop a run."""

    def on_latents_cached(self) -> None:
        """The pictures are encoded: the trainer will not use the latent encoder (the VAE) again."""

    def on_step(self, report: StepReport) -> None:
        pass

    def on_checkpoint(self, embedding: Embedding, step: int) -> None:
        pass

    def on_preview(self, embedding: Embedding, step: int) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@dataclasses.dataclass
class TrainingResult:
    embedding: Embedding
    losses: list[float]  # one per step of this run
    stopped_early: bool
    steps_done: int  # counted from the start of the word's training, resumed steps included


class TrainingDiverged(EmbeddingError):
    """The loss or the vectors became NaN/inf; ``last_good`` holds the vectors from before that step."""

    def __init__(self, message: str, last_good: Embedding):
        super().__init__(message)
        self.last_good = last_good


def initial_vectors(model: FrozenModel, init_text: str, num_vectors: int) -> dict[str, torch.Tensor]:
    """The init word's token embeddings, repeated in turn to fill ``num_vectors`` rows (as A1111 does)."""
    words = model.prompt_encoder.word_vectors(init_text)
    vectors = {}
    for name, rows in words.items():
        if rows.shape[0] == 0:
            raise ValueError(f"init_text {init_text!r} gives no tokens; use a plain word such as 'cat'.")
        index = torch.arange(num_vectors) % rows.shape[0]
        vectors[name] = rows.detach().float().cpu()[index].clone()
    return vectors


@torch.no_grad()
def cache_latents(model: FrozenModel, images: Sequence[ConceptImage], flip: bool) -> torch.Tensor:
    """Encode every picture (and its mirror image) once; the VAE is never needed again during training."""
    if not images:
        raise ValueError("No concept pictures were given; training needs 3-5 pictures of the concept.")
    sizes = {tuple(image.pixels.shape) for image in images}
    if len(sizes) != 1:
        raise ValueError(f"All concept pictures must share one size; got {sorted(sizes)}.")
    latents = []
    for image in images:
        pixels = image.pixels.unsqueeze(0).to(model.device) * 2 - 1
        # One picture per VAE call: at 512 px a pair would add ~0.4 GB to the run's peak memory, for no speed.
        for view in (pixels, pixels.flip(-1)) if flip else (pixels,):
            with autocast(model, for_vae=True):
                latents.append(model.latent_encoder.encode(view).float())
    return torch.cat(latents)


def autocast(model: FrozenModel, for_vae: bool = False):
    # Stable Diffusion's VAEs overflow in float16, so hosts keep them in float32, which float16 autocast would
    # undo; bfloat16 has float32's range.
    if model.autocast_dtype is None or (for_vae and model.autocast_dtype == torch.float16):
        return contextlib.nullcontext()
    return torch.autocast(device_type=model.device.type, dtype=model.autocast_dtype)


def batch_loss(model: FrozenModel, latents: torch.Tensor, prompts: Sequence[str], token: str,
               vectors: dict[str, torch.Tensor], timesteps: torch.Tensor, noise: torch.Tensor,
               min_snr_gamma: float | None = None) -> torch.Tensor:
    """The denoising loss of one batch, its forward passes in the model's compute dtype; backward from it reaches
    ``vectors`` alone. All the work of a training step but the optimiser's is here and in its backward."""
    with autocast(model):
        cond = model.prompt_encoder.encode(prompts, token, vectors)
        return denoising_loss(model.denoiser, latents, cond, timesteps, noise, min_snr_gamma)


def snapshot(config: TrainingConfig, model: FrozenModel, params: dict[str, torch.Tensor], steps_done: int,
             losses: list[float], base_metadata: dict) -> Embedding:
    tail = losses[-max(1, len(losses) // 10):] if losses else []
    metadata = {
        **base_metadata,
        "init_text": config.init_text,
        "steps": steps_done,
        "learning_rate": str(config.learning_rate),
        "lr_schedule": config.lr_schedule,
        "batch_size": config.batch_size,
        "grad_accum": config.grad_accum,
        "template": config.template,
        "seed": config.seed,
    }
    if model.model_hash:
        metadata["base_model_hash"] = model.model_hash
    if losses:
        metadata["loss_first"] = round(losses[0], 6)
        metadata["loss_last"] = round(sum(tail) / len(tail), 6)
    vectors = {name: p.detach().float().cpu().clone() for name, p in params.items()}
    return Embedding(config.token, vectors, metadata)


def train_embedding(
    model: FrozenModel,
    images: Sequence[ConceptImage],
    config: TrainingConfig,
    callbacks: TrainingCallbacks | None = None,
    resume: Embedding | None = None,
) -> TrainingResult:
    config.validate()
    callbacks = callbacks or TrainingCallbacks()
    device = model.device
    if resume is not None:
        resume.check_family(model.family)
        start = {name: resume.vectors[name] for name in model.prompt_encoder.encoder_widths}
        first_step = int(resume.metadata.get("steps", 0)) + 1
        base_metadata = {k: v for k, v in resume.metadata.items() if not k.startswith("loss_")}
    else:
        start = initial_vectors(model, config.init_text, config.num_vectors)
        first_step, base_metadata = 1, {}
    params = {name: torch.nn.Parameter(v.to(device, torch.float32).clone()) for name, v in start.items()}
    losses: list[float] = []
    if first_step > config.steps:
        return TrainingResult(snapshot(config, model, params, first_step - 1, losses, base_metadata),
                              losses, False, first_step - 1)

    latents = cache_latents(model, images, config.flip)
    callbacks.on_latents_cached()
    captions = [image.caption for image in images for _ in range(2 if config.flip else 1)]
    templates = PromptTemplates(config.template, config.token)
    schedule = make_schedule(config.learning_rate, config.steps, config.lr_schedule, config.warmup_steps)
    optimizer = torch.optim.AdamW(params.values(), lr=schedule(first_step), weight_decay=0.0)
    scaler = loss_scaler(device, model.autocast_dtype)
    num_timesteps = model.denoiser.alphas_cumprod.shape[0]

    good = ({name: p.detach().clone() for name, p in params.items()}, first_step - 1)
    started = time.perf_counter()
    step = first_step - 1
    stopped = False
    for step in range(first_step, config.steps + 1):
        if callbacks.should_stop():
            stopped, step = True, step - 1
            break
        current = {name: p.detach().clone() for name, p in params.items()}
        lr = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        prompt_rng = random.Random(config.seed * 1_000_003 + step)
        step_losses = []
        for _ in range(config.grad_accum):
            pick = torch.randint(len(latents), (config.batch_size,), generator=generator)
            timesteps = torch.randint(num_timesteps, (config.batch_size,), generator=generator)
            noise = torch.randn((config.batch_size, *latents.shape[1:]), generator=generator)
            prompts = [templates.prompt(captions[i], prompt_rng) for i in pick.tolist()]
            loss = batch_loss(model, latents[pick], prompts, config.token, params, timesteps.to(device),
                              noise.to(device), config.min_snr_gamma) / config.grad_accum
            (scaler.scale(loss) if scaler else loss).backward()
            step_losses.append(loss.detach())
        step_loss = torch.stack(step_losses).sum().item()  # one wait for the device per step, not per batch
        # A non-finite loss condemns the vectors it was computed with, so the last good ones are those of the
        # step before; a finite loss with a non-finite gradient or update condemns only the update.
        if not math.isfinite(step_loss):
            raise_diverged(config, model, good, step, step_loss, lr, losses[:-1], base_metadata)
        good = (current, step - 1)
        if scaler:
            # float16: an overflowing gradient only means the loss scale is too high; the scaler skips the
            # update and lowers the scale.
            scaler.unscale_(optimizer)
        elif not all(torch.isfinite(p.grad).all() for p in params.values() if p.grad is not None):
            raise_diverged(config, model, good, step, step_loss, lr, losses, base_metadata)
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params.values(), config.max_grad_norm)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if not all(torch.isfinite(p).all() for p in params.values()):
            raise_diverged(config, model, good, step, step_loss, lr, losses, base_metadata)
        losses.append(step_loss)

        elapsed = time.perf_counter() - started
        done = step - first_step + 1
        callbacks.on_step(StepReport(step, config.steps, step_loss, lr, elapsed,
                                     elapsed / done * (config.steps - step)))
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.steps:
            callbacks.on_checkpoint(snapshot(config, model, params, step, losses, base_metadata), step)
        if config.preview_every and step % config.preview_every == 0:
            callbacks.on_preview(snapshot(config, model, params, step, losses, base_metadata), step)

    return TrainingResult(snapshot(config, model, params, step, losses, base_metadata), losses, stopped, step)


def raise_diverged(config, model, good, step, step_loss, lr, losses, base_metadata):
    vectors, good_step = good
    raise TrainingDiverged(
        f"Training diverged at step {step}: the loss became {step_loss} (learning rate {lr:g}). The vectors "
        f"from step {good_step} are kept; resume from them with a lower learning rate.",
        snapshot(config, model, vectors, good_step, losses, base_metadata),
    )
