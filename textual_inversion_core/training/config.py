"""The settings of one training run, checked once, when they are made."""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from ..families import MAX_VECTORS
from ..schedules import SCHEDULE_KINDS, make_schedule
from ..templates import template_tokens
from ..lora.adapter import LAYER_SETS
from .norm_control import NORM_CONTROLS

# Chosen with bench/recovery.py (a hidden word learned from 5 latents; share of the held-out loss gap closed,
# 300 steps, batch 1): 5e-3 reached 0.9 after 40 steps on every seed tried and ended at 0.93-0.95, within 0.005
# of the best final figure; 1e-3 took 60 steps, 2e-2 40-60 with a noisier end. The benchmark plateaus by about
# 100 steps; real pictures on a trained UNet give far noisier gradients, hence ten times that by default.
#
# Checked on the concept world (bench/quality.py, its four held-out concepts, build 13's recipe; averages of
# reconstruction / edits that keep the concept, against the named ceiling's 0.739 / 0.79):
#   steps, at 5e-3:  250: 0.746 / 0.25   500: 0.746 / 0.33   1000: 0.754 / 0.33   2000: 0.758 / 0.34
#   learning rate, 1000 steps:  2e-3: 0.760 / 0.35   5e-3: 0.754 / 0.33   1.5e-2: 0.749 / 0.29
#   vectors, 1000 steps:  1: 0.754 / 0.33   2: 0.750 / 0.34
#   batch, 1000 steps:  1: 0.754 / 0.33 (59 s)   4: 0.748 / 0.36 (159 s)
#   min-SNR weighting, 1000 steps:  none: 0.754 / 0.33   gamma 5: 0.685 / 0.21 (hence none by default)
# Every setting lands within the exams' noise (a share of 48 pictures per concept moves by about 0.07), so the
# defaults stay: one vector and batch 1 cost least, 5e-3 is the rate the recovery benchmark reaches quality
# fastest with and 2e-3 is no better here, and the world's words have their final quality by 500 steps, which
# leaves 1000 a margin for concepts richer than the world's.
# Build 15 (rebuilt on an AMX Xeon): 1000 steps 0.721 / 0.32 against a ceiling of 0.739 / 0.76, the example's
# 3000 steps 0.707 / 0.30 in 13x the time; this project's 500-step snapshots 0.703 / 0.42, a first sign that fewer
# steps keep more edits (level on build 13), not yet enough to give up the margin.
DEFAULT_STEPS = 1000
DEFAULT_LEARNING_RATE = 5e-3


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How to learn one word. Raises ``ConfigError`` naming the first field that cannot work."""

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
    # See norm_control.py: "off", "rescale" or "penalty". Off, from bench/prompt_keeping.py on the concept world's
    # build 13 (three held-out objects, 1,000 steps): held to a real word's size the words lost more than they
    # gained, editability 0.19 (rescale, penalty) against 0.35 off, reconstruction 0.62-0.68 against 0.81.
    norm_control: str = "off"
    norm_penalty: float = 0.1  # the penalty's weight, with norm_control "penalty"
    unmasked_weight: float = 0.0  # with masks: how much the loss outside a picture's mask still counts
    # Pivotal tuning: after the word's ``steps``, ``lora_steps`` more train a low-rank adapter on the UNet with
    # the word in the prompts (lora/adapter.py), on ``lr_schedule`` and ``warmup_steps`` over the stage's own
    # steps. The word stays fixed unless ``lora_word_learning_rate`` > 0.
    # Rank 4 and 1e-4 are diffusers' DreamBooth-LoRA defaults; alpha None means alpha = rank (scale 1).
    lora_steps: int = 0
    lora_rank: int = 4
    lora_alpha: float | None = None
    lora_learning_rate: float = 1e-4
    lora_layers: str = "attention"
    lora_word_learning_rate: float = 0.0

    @property
    def total_steps(self) -> int:
        return self.steps + self.lora_steps

    def __post_init__(self) -> None:
        if not self.token.strip() or any(c.isspace() for c in self.token):
            raise ConfigError(f"token must be a single word such as '<my-cat>', got {self.token!r}.")
        if not self.init_text.strip():
            raise ConfigError("init_text must name a coarse word for the concept, e.g. 'cat' or 'painting'.")
        if not 1 <= self.num_vectors <= MAX_VECTORS:
            raise ConfigError(f"num_vectors must be between 1 and {MAX_VECTORS}, got {self.num_vectors}.")
        for name in ("batch_size", "grad_accum", "lora_rank"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.steps < (0 if self.lora_steps else 1):
            raise ConfigError(f"steps must be at least 1 (0 only with lora_steps), got {self.steps}.")
        for name in ("warmup_steps", "checkpoint_every", "preview_every", "lora_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 (off) or more, got {getattr(self, name)}.")
        if self.lr_schedule not in SCHEDULE_KINDS:
            raise ConfigError(f"lr_schedule must be one of {', '.join(SCHEDULE_KINDS)}, got {self.lr_schedule!r}.")
        # A word longer than the room its prompts leave would be cut short, or split over two prompt chunks,
        # depending on the host.
        room = MAX_VECTORS - template_tokens(self.template)
        if self.num_vectors > room:
            raise ConfigError(
                f"num_vectors {self.num_vectors} does not fit the {self.template} template: a prompt holds "
                f"{MAX_VECTORS} tokens and its longest template takes {MAX_VECTORS - room} of them besides the "
                f"word; use at most {room} vectors."
            )
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError(f"max_grad_norm must be positive or None, got {self.max_grad_norm}.")
        if self.min_snr_gamma is not None and not self.min_snr_gamma > 0:
            raise ConfigError(f"min_snr_gamma must be positive or None, got {self.min_snr_gamma}.")
        if self.norm_control not in NORM_CONTROLS:
            raise ConfigError(f"norm_control must be one of {', '.join(NORM_CONTROLS)}, got {self.norm_control!r}.")
        if not self.norm_penalty >= 0:
            raise ConfigError(f"norm_penalty must be 0 or more, got {self.norm_penalty}.")
        if not 0 <= self.unmasked_weight <= 1:
            raise ConfigError(
                f"unmasked_weight must be between 0 (the loss ignores everything outside the masks) and 1 (masks "
                f"change nothing), got {self.unmasked_weight}."
            )
        if self.lora_layers not in LAYER_SETS:
            raise ConfigError(f"lora_layers must be one of {', '.join(LAYER_SETS)}, got {self.lora_layers!r}.")
        if not self.lora_learning_rate > 0:
            raise ConfigError(f"lora_learning_rate must be positive, got {self.lora_learning_rate}.")
        if not self.lora_word_learning_rate >= 0:
            raise ConfigError(f"lora_word_learning_rate must be 0 (the word stays fixed) or more, got "
                              f"{self.lora_word_learning_rate}.")
        if self.lora_alpha is not None and not self.lora_alpha > 0:
            raise ConfigError(f"lora_alpha must be positive or None (alpha = rank), got {self.lora_alpha}.")
        if self.steps:
            self.schedule()

    def schedule(self):
        """The learning rate at each 1-based step."""
        return make_schedule(self.learning_rate, self.steps, self.lr_schedule, self.warmup_steps)

    def lora_schedule(self):
        """The adapter's learning rate at each 1-based step of the LoRA stage: the same ``lr_schedule`` and
        warm-up over the stage's own steps."""
        return make_schedule(self.lora_learning_rate, self.lora_steps, self.lr_schedule,
                             min(self.warmup_steps, self.lora_steps))
