"""The command line's training job as one typed request: a local diffusers folder and a folder of pictures in,
an embedding file, its checkpoints, its validation grids (each with the word of its step), and a loss plot out.
With ``lora_steps`` the file is a pivotal LoRA (the adapter with its word bundled) and the word alone is written
beside it. ``train`` and the demo both run it."""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path

from .console import ConsoleProgress
from .data import load_concept_folder
from .errors import UserError
from .formats import save_embedding
from .formats.pivotal_lora import load_snapshot, save_pivotal_lora
from .lora import PivotalLora, Snapshot, word_of
from .loss_plot import render_loss_plot
from .precision import resolve_device, weights_dtype
from .training import TrainingConfig, TrainingDiverged, TrainingResult, train_embedding
from .validation import DEFAULT_GUIDANCE, Validation, validation_grid, validation_prompts


class OutputExists(UserError, FileExistsError):
    """A file the job would write is already there."""


@dataclasses.dataclass(frozen=True)
class TrainJob:
    model: Path  # a local diffusers folder
    images: Path  # a folder of 3-5 pictures (+ optional captions)
    out: Path  # the embedding file; checkpoints, previews and the loss plot go beside it
    config: TrainingConfig
    resolution: int = 512
    crop: str = "center"
    device: str = "auto"
    dtype: str = "auto"  # the frozen model's; "auto" is the fastest the device computes natively
    compile: bool = False  # the UNet's training passes through torch.compile
    file_format: str | None = None  # None: from the ending of ``out``
    overwrite: bool = False
    resume: Path | None = None  # an embedding file to go on training
    preview_prompts: tuple[str, ...] = ()  # the validation prompts; none: "a photo of <token>"
    preview_negative: str = ""
    preview_cfg: float = DEFAULT_GUIDANCE

    def validation(self) -> Validation:
        return Validation(validation_prompts(self.preview_prompts, self.config.token), self.preview_negative,
                          self.preview_cfg)

    def checkpoint_path(self, step: int) -> Path:
        return self.out.with_name(f"{self.out.stem}-step{step}{self.out.suffix}")

    def preview_path(self, step: int) -> Path:
        return self.out.with_name(f"{self.out.stem}-preview-step{step}.png")

    def loss_plot_path(self) -> Path:
        return self.out.with_name(f"{self.out.stem}-loss.png")

    def word_path(self) -> Path:
        """Where a pivotal run writes its word alone, for the embedding loaders."""
        return self.out.with_name(f"{self.out.stem}-word{self.out.suffix}")

    def planned_outputs(self) -> list[Path]:
        config = self.config
        paths = [self.out, self.loss_plot_path()] + ([self.word_path()] if config.lora_steps else [])
        snapshots = set()
        for every in (config.checkpoint_every, config.preview_every):
            if every:
                snapshots |= set(range(every, config.total_steps, every))
        paths += [self.checkpoint_path(s) for s in sorted(snapshots)]
        if config.preview_every:
            paths += [self.preview_path(s) for s in range(config.preview_every, config.total_steps + 1,
                                                           config.preview_every)]
        return paths

    def save(self, snapshot: Snapshot, path: Path) -> Path:
        if isinstance(snapshot, PivotalLora):
            return save_pivotal_lora(snapshot, path, overwrite=self.overwrite)
        return save_embedding(snapshot, path, format=self.file_format, overwrite=self.overwrite)[0]


class JobCallbacks(ConsoleProgress):
    """The console's progress, plus the job's checkpoint and preview files and the time it took to get going."""

    def __init__(self, job: TrainJob, preview, started: float):
        super().__init__()
        self.job, self.preview, self.started = job, preview, started
        self.saved_steps: set[int] = set()

    def on_latents_cached(self) -> None:
        print(f"pictures encoded; the first step starts {time.perf_counter() - self.started:.1f} s after the job "
              "did", file=sys.stderr)

    def on_checkpoint(self, snapshot: Snapshot, step: int) -> None:
        self.job.save(snapshot, self.job.checkpoint_path(step))
        self.saved_steps.add(step)

    def on_preview(self, snapshot: Snapshot, step: int) -> None:
        self.preview(snapshot, step).save(self.job.preview_path(step))
        # The word the grid shows, to choose afterwards; the last step's word is the job's own output.
        if step < self.job.config.total_steps and step not in self.saved_steps:
            self.on_checkpoint(snapshot, step)


def run_train_job(job: TrainJob) -> TrainingResult:
    """Train, write the files, and say on stderr what happened. Refuses to overwrite before any work; Ctrl-C
    stops after the current step and keeps what was learned; a divergence keeps the last good vectors."""
    started = time.perf_counter()
    from .hosts.diffusers import load_diffusers_model  # diffusers is slow to import; only training needs it

    config = job.config
    if config.lora_steps and (job.out.suffix.lower() != ".safetensors" or job.file_format not in (None, "safetensors")):
        raise UserError(f"A pivotal LoRA is written as .safetensors; name --out {job.out.stem}.safetensors and "
                        "leave --format out.")
    existing = [str(p) for p in job.planned_outputs() if p.exists()]
    if existing and not job.overwrite:
        raise OutputExists(f"would overwrite {', '.join(existing)}; choose another --out or pass --overwrite.")
    resume = load_snapshot(job.resume) if job.resume else None
    images = load_concept_folder(job.images, job.resolution, job.crop)
    masked = sum(image.mask is not None for image in images)
    print(f"{len(images)} pictures from {job.images} at {job.resolution}px"
          + (f", {masked} with a mask (the loss outside counts {config.unmasked_weight:g}x)" if masked else ""),
          file=sys.stderr)

    device = resolve_device(job.device)
    model = load_diffusers_model(job.model, device=device, dtype=weights_dtype(job.dtype, device), compile=job.compile)
    frozen = model.frozen_model(release_vae_when_cached=True)
    print(f"model: {job.model} ({frozen.family}, {model.prediction_type}, {model.dtype}) on {frozen.device}, "
          f"loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    validation = job.validation()

    def render_validation(snapshot: Snapshot, step: int):
        # In the LoRA stage the adapter's hooks are on the pipeline's UNet while training runs, previews included.
        pictures = model.render_pictures(word_of(snapshot), validation.prompts, [config.seed] * len(validation.prompts),
                                         resolution=job.resolution, guidance_scale=validation.guidance_scale,
                                         negative_prompt=validation.negative_prompt)
        return validation_grid(validation, pictures, step)

    callbacks = JobCallbacks(job, render_validation, started)

    previous = signal.signal(signal.SIGINT, callbacks.request_stop)
    try:
        result = train_embedding(frozen, images, config, callbacks, resume=resume)
    except TrainingDiverged as diverged:
        job.save(diverged.last_good, job.out)
        raise TrainingDiverged(f"{diverged} Saved the last good vectors to {job.out}.", diverged.last_good) from None
    finally:
        signal.signal(signal.SIGINT, previous)

    job.out.parent.mkdir(parents=True, exist_ok=True)
    written = job.save(result.lora or result.embedding, job.out)
    if config.lora_steps:
        written = f"{written} (the word and its LoRA) and {job.save(result.embedding, job.word_path())}"
    plot = render_loss_plot(result.losses, title=f"{config.token} loss", first_step=result.first_step,
                            total_steps=config.total_steps)
    plot.save(job.loss_plot_path())
    state = "stopped early at" if result.stopped_early else "trained for"
    loss = result.embedding.metadata.get("loss_last")
    print(f"{config.token} {state} step {result.steps_done}; final loss {loss}; wrote {written} "
          f"and {job.loss_plot_path()}", file=sys.stderr)
    return result
