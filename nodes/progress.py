"""What the user sees of a training: ComfyUI's progress bar, and the websocket messages the frontend extension
(``web/``) draws its loss chart and preview picture from.

Messages (``PromptServer.send_sync``), all carrying ``node`` (the Train Embedding node's id) and ``prompt_id``:
- ``textual_inversion.progress`` once per step: ``step`` (1-based), ``total``, ``loss``, ``lr``, ``elapsed``, ``eta``,
  ``norm`` (the largest vector's norm over the vocabulary's median token norm);
- ``textual_inversion.warning``: ``step`` and ``message``, what the trainer advises changing (said once each);
- ``textual_inversion.preview``: ``step``, ``image`` ({filename, subfolder, type: "temp"}, served by /view: the
  validation grid) and ``saved`` (where that step's word was kept, else null);
- ``textual_inversion.done``: ``steps`` done, ``total``, ``final_loss`` (null before any step), ``stopped``
  (true when the user interrupted) and ``saved`` (where the unfinished word was kept, else null).
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_execution.utils import get_executing_context
from PIL import Image
from server import PromptServer

from ..textual_inversion_core.embedding import Embedding
from ..textual_inversion_core.training import StepReport, TrainingCallbacks

log = logging.getLogger(__name__)


def send(event: str, data: dict) -> None:
    server = PromptServer.instance
    server.send_sync(event, data, server.client_id)


class NodeTrainingProgress(TrainingCallbacks):
    """Reports a running training to the user and notices the stop button.

    Interrupting is polled before every step (``should_stop``); ComfyUI's layers may also raise
    ``InterruptProcessingException`` in the middle of one, which ends the run the same way. Either way the
    result holds the word after the last finished step.
    """

    interrupted_by = (comfy.model_management.InterruptProcessingException,)

    def __init__(self, total: int, render_preview: Callable[[Embedding, int], Image.Image] | None,
                 keep_word: Callable[[Embedding, int], str] | None = None):
        context = get_executing_context()
        self.node_id = context.node_id if context else None
        self.prompt_id = context.prompt_id if context else None
        self.total = total
        self.render_preview = render_preview
        self.keep_word = keep_word
        self.progress_bar = comfy.utils.ProgressBar(total, node_id=self.node_id)
        self.steps_done = 0
        self.last_loss: float | None = None

    def _ids(self) -> dict:
        return {"node": self.node_id, "prompt_id": self.prompt_id}

    def on_step(self, report: StepReport) -> None:
        self.steps_done, self.last_loss = report.step, report.loss
        send("textual_inversion.progress", {
            **self._ids(), "step": report.step, "total": report.total, "loss": report.loss,
            "lr": report.learning_rate, "elapsed": report.elapsed, "eta": report.eta, "norm": report.norm_ratio,
        })
        # The progress bar's hook raises at once when interrupted; leave that to should_stop before the next
        # step, so the step just finished still counts.
        if not self.should_stop():
            self.progress_bar.update_absolute(report.step, report.total)

    def on_warning(self, message: str) -> None:
        log.warning("Training embedding: %s", message)
        send("textual_inversion.warning", {**self._ids(), "step": self.steps_done, "message": message})

    def on_preview(self, embedding: Embedding, step: int) -> None:
        if self.render_preview is None or self.should_stop():
            return
        # Only the node's panel shows the preview, captioned with its step: a copy through the progress bar's
        # preview would show the same picture a second time on the node, without saying which step made it.
        image = self.render_preview(embedding, step)
        saved = self.keep_word(embedding, step) if self.keep_word else None
        send("textual_inversion.preview", {**self._ids(), "step": step, "image": save_temp_picture(image),
                                           "saved": saved})

    def should_stop(self) -> bool:
        return comfy.model_management.processing_interrupted()

    def done(self, steps: int, stopped: bool, saved: str | None = None) -> None:
        send("textual_inversion.done", {
            **self._ids(), "steps": steps, "total": self.total, "final_loss": self.last_loss, "stopped": stopped,
            "saved": saved,
        })


def save_temp_picture(image: Image.Image) -> dict:
    """Save into ComfyUI's temp folder; returns the reference /view serves it by."""
    temp_dir = folder_paths.get_temp_directory()
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path("textual_inversion_preview", temp_dir)
    filename = f"{name}_{counter:05}_.png"
    os.makedirs(folder, exist_ok=True)
    image.save(os.path.join(folder, filename), compress_level=1)
    return {"filename": filename, "subfolder": subfolder, "type": "temp"}
