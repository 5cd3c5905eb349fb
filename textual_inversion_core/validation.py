"""Validation while training: the user's own prompts, rendered with the word every N steps, through the host's
own sampler, as one labelled grid per step; the word of that step is kept beside it, so the best can be chosen
afterwards rather than only the last."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from PIL import Image

from .errors import ConfigError
from .picture_grid import picture_grid

DEFAULT_GUIDANCE = 7.0


@dataclasses.dataclass(frozen=True)
class Validation:
    """What every validation renders: its prompts (with the word in them), the negative prompt and the CFG
    scale. Each prompt is rendered with the same seed at every step, so successive grids differ only by what
    the word has learned."""

    prompts: tuple[str, ...]
    negative_prompt: str = ""
    guidance_scale: float = DEFAULT_GUIDANCE

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ConfigError("validation needs at least one prompt.")
        if not self.guidance_scale >= 1:
            raise ConfigError(f"the validation CFG scale must be 1 or more, got {self.guidance_scale}.")


def validation_prompts(given: str | Sequence[str] | None, token: str) -> tuple[str, ...]:
    """The prompts from ``given`` (text with one prompt per line, or a list), A1111's ``[name]`` standing for the
    token; none at all means "a photo of <token>"."""
    lines = given.split("\n") if isinstance(given, str) else list(given or [])
    prompts = tuple(line.strip().replace("[name]", token) for line in lines if line.strip())
    return prompts or (f"a photo of {token}",)


def validation_grid(validation: Validation, pictures: torch.Tensor, step: int) -> Image.Image:
    """The pictures of one validation (``[N, 3, H, W]`` in [0, 1], one per prompt), a row each, labelled with
    its prompt and the step."""
    return picture_grid([(f"step {step}: {prompt}", pictures[i:i + 1])
                         for i, prompt in enumerate(validation.prompts)])
