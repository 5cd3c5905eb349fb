"""The model the benchmark times: the SD1.5 architecture with random weights, written as a diffusers folder.

The project's tiny random SD1 model gives the tokenizer, the scheduler and the text encoder's kind (width,
activation, pooling); this module gives each network SD1.5's own sizes, so a step costs what it costs on a
released SD1.5 checkpoint.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import torch

CLIP_VOCABULARY = 49408  # SD1.5's CLIP-L; ComfyUI's own tokenizer indexes rows up to it
TEXT_ENCODER = dict(vocab_size=CLIP_VOCABULARY, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32, sample_size=512)
SEED = 0


@contextlib.contextmanager
def benchmark_model(path: Path | None) -> Iterator[Path]:
    """The model a benchmark runs on: the diffusers folder ``path``, built there first when it does not exist,
    or a fresh one in a temporary folder (None) removed afterwards."""
    with tempfile.TemporaryDirectory() as scratch:
        path = path or Path(scratch) / "sd15-random"
        if not path.exists():
            print(f"building the random SD1.5-architecture model in {path} ...", file=sys.stderr)
            build_sd15_model(path)
        yield path


def build_sd15_model(path: Path) -> Path:
    """Write the random SD1.5-architecture model at ``path`` (which must not exist), the same weights every
    time."""
    pipeline = build_sd15_pipeline()
    path.mkdir(parents=True)
    pipeline.save_pretrained(path, safe_serialization=True)
    return path


def build_sd15_pipeline():
    """The random SD1.5-architecture pipeline in memory (on the meta device too, for its shapes alone)."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from textual_inversion_core.demo.tiny_models import build_random_pipeline

    tiny = build_random_pipeline("sd1", seed=SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        pipeline = StableDiffusionPipeline(
            vae=AutoencoderKL.from_config(tiny.vae.config, **VAE),
            text_encoder=CLIPTextModel(CLIPTextConfig.from_dict(tiny.text_encoder.config.to_dict(), **TEXT_ENCODER)),
            tokenizer=tiny.tokenizer,
            # diffusers' defaults are the SD1.5 UNet, but for the context width.
            unet=UNet2DConditionModel(sample_size=64, cross_attention_dim=768),
            scheduler=tiny.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    return pipeline
