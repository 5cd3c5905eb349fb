"""A training run inside a node, for Train Embedding and Train Pivotal LoRA alike: the models opened for
gradients, the panel's progress and validation grids, and what the user made kept when the run stops early or
diverges."""

from __future__ import annotations

import logging

import comfy.model_management

from ..textual_inversion_core.data import ConceptImage
from ..textual_inversion_core.lora import PivotalLora, Snapshot, steps_trained, word_of
from ..textual_inversion_core.loss_plot import render_loss_plot
from ..textual_inversion_core.training import TrainingConfig, TrainingDiverged, TrainingResult, train_embedding
from ..textual_inversion_core.validation import Validation
from .comfy_host import frozen_model, preview, training_session
from .comfy_host.embedding_folders import display_path, file_stem, save_new_embedding_file
from .comfy_host.images import picture_to_image
from .comfy_host.lora_folders import display_lora_path, save_new_lora_file
from .progress import NodeTrainingProgress

log = logging.getLogger(__name__)


def run_training(model, clip, vae, pictures: list[ConceptImage], config: TrainingConfig, resume: Snapshot | None,
                 validation: Validation, seed: int, keep_previewed: bool, compile: bool = False) -> TrainingResult:
    """Train as ``config`` says; a stopped run raises ComfyUI's interrupt after keeping what it learned."""
    if resume is not None and resume.token != config.token:
        resume = resume.with_token(config.token)
    height, width = pictures[0].pixels.shape[1:]

    def render(snapshot: Snapshot, step: int):
        # In the LoRA stage the adapter acts in the MODEL's layers while training runs, previews included.
        return preview.render_validation(model, clip, vae, word_of(snapshot), validation, width, height, seed, step)

    progress = NodeTrainingProgress(config.total_steps, render if config.preview_every else None,
                                    keep if keep_previewed else None)
    log.info("Training %s from %d pictures (%dx%d), %d steps.", config.token, len(pictures), width, height,
             config.total_steps)
    with training_session(model, clip):
        try:
            result = train_embedding(frozen_model(model, clip, vae, compile), pictures, config, progress, resume)
        except TrainingDiverged as diverged:
            kept = keep_unfinished(diverged.last_good, resume)
            progress.done(progress.steps_done, stopped=False, saved=kept)
            where = f" They were saved as {kept}." if kept else ""
            raise TrainingDiverged(f"{diverged}{where}", diverged.last_good) from None

    if result.stopped_early:
        kept = keep_unfinished(result.lora or result.embedding, resume)
        progress.done(result.steps_done, stopped=True, saved=kept)
        log.warning(
            "Training of %s stopped by the user after step %d of %d.%s", config.token, result.steps_done,
            config.total_steps, f" What it learned so far was saved as {kept}; load it to use it or to resume "
            "training." if kept else "",
        )
        raise comfy.model_management.InterruptProcessingException()
    progress.done(result.steps_done, stopped=False)
    return result


def loss_graph(result: TrainingResult, config: TrainingConfig):
    plot = render_loss_plot(result.losses, title=f"loss of {config.token}", first_step=result.first_step,
                            total_steps=config.total_steps)
    return picture_to_image(plot)


def keep(snapshot: Snapshot, step: int) -> str:
    """Save a snapshot under a new name (``<token>_step<N>``): a word in embeddings, a pivotal LoRA in loras."""
    stem = f"{file_stem(snapshot.token)}_step{step}"
    if isinstance(snapshot, PivotalLora):
        return display_lora_path(save_new_lora_file(snapshot, stem))
    return display_path(save_new_embedding_file(snapshot, stem))


def keep_unfinished(snapshot: Snapshot | None, resume: Snapshot | None) -> str | None:
    """Save what a run that did not finish learned, unless it holds nothing new; returns where it went."""
    if snapshot is None:
        return None
    steps = steps_trained(snapshot)
    done_before = None if resume is None else steps_trained(resume)
    if steps == 0 or steps == done_before:
        return None
    return keep(snapshot, steps)
