"""Random-weight Stable Diffusion models (SD1, SD2, SDXL) built offline from a seed.

They let the trainer, the hosts and the tests run against real diffusers and transformers modules without
downloading a checkpoint. Every network is a few layers deep while the text encoders keep their real
token-embedding widths (clip_l 768, clip_h 1024, clip_g 1280), because embeddings are only usable with encoders
of exactly those widths.

The tokenizer is a real CLIP byte-level BPE with a small vocabulary of its own (``vocabulary.py``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from ..objective import PREDICTION_TYPES
from .vocabulary import EOS, write_tokenizer

FAMILIES = ("sd1", "sd2", "sdxl")


def _text_encoder_config(tokenizer: CLIPTokenizer, width: int, act: str, **extra) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        max_position_embeddings=77,
        hidden_act=act,
        bos_token_id=tokenizer.bos_token_id,
        # Released SD checkpoints carry CLIP's legacy eos_token_id=2, which makes transformers pool at the
        # highest token id (the end marker); that is the path real models take.
        eos_token_id=2,
        pad_token_id=1,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        **extra,
    )


def _unet(family: str) -> UNet2DConditionModel:
    common = dict(sample_size=8, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=32)
    if family == "sd1":
        return UNet2DConditionModel(
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=768,
            attention_head_dim=4,
            **common,
        )
    if family == "sd2":
        return UNet2DConditionModel(
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=1024,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            **common,
        )
    time_embed_dim = 8
    return UNet2DConditionModel(
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=2048,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=1,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        # Six micro-conditioning numbers (original size, crop corner, target size), each sinusoidally embedded,
        # next to clip_g's 1280-wide pooled text embedding.
        projection_class_embeddings_input_dim=6 * time_embed_dim + 1280,
        **common,
    )


def _vae(family: str) -> AutoencoderKL:
    scaling_factor = 0.13025 if family == "sdxl" else 0.18215
    # Four blocks give the real eight-fold downsampling (512 px -> 64 latents, 64 px -> 8).
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        norm_num_groups=8,
        latent_channels=4,
        sample_size=64,
        scaling_factor=scaling_factor,
    )


def _scheduler(family: str, prediction_type: str):
    # The schedulers the released checkpoints ship with, on SD's shared "scaled_linear" noise schedule.
    betas = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    if family == "sd1":
        return PNDMScheduler(
            **betas, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type
        )
    if family == "sd2":
        return DDIMScheduler(
            **betas, clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type
        )
    return EulerDiscreteScheduler(**betas, steps_offset=1, timestep_spacing="leading", prediction_type=prediction_type)


def _check_arguments(family: str, prediction_type: str | None) -> str:
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; choose one of {', '.join(FAMILIES)}.")
    prediction_type = prediction_type or "epsilon"
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"Unknown prediction type {prediction_type!r}; choose one of {', '.join(PREDICTION_TYPES)}.")
    return prediction_type


def _build(family: str, seed: int, prediction_type: str, tokenizer_root: Path) -> DiffusionPipeline:
    # SD1 pads prompts with the end marker; OpenCLIP-trained encoders (SD2, SDXL's clip_g) pad with "!".
    tokenizer = write_tokenizer(tokenizer_root / "tokenizer", pad_token=EOS if family != "sd2" else "!")
    # A private RNG stream: same seed, same weights, whatever the caller's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if family == "sdxl":
            tokenizer_2 = write_tokenizer(tokenizer_root / "tokenizer_2", pad_token="!")
            text_encoder = CLIPTextModel(_text_encoder_config(tokenizer, 768, "quick_gelu"))
            text_encoder_2 = CLIPTextModelWithProjection(
                _text_encoder_config(tokenizer_2, 1280, "gelu", projection_dim=1280)
            )
            return StableDiffusionXLPipeline(
                vae=_vae(family),
                text_encoder=text_encoder,
                text_encoder_2=text_encoder_2,
                tokenizer=tokenizer,
                tokenizer_2=tokenizer_2,
                unet=_unet(family),
                scheduler=_scheduler(family, prediction_type),
                add_watermarker=False,
            )
        width, act = (768, "quick_gelu") if family == "sd1" else (1024, "gelu")
        return StableDiffusionPipeline(
            vae=_vae(family),
            text_encoder=CLIPTextModel(_text_encoder_config(tokenizer, width, act)),
            tokenizer=tokenizer,
            unet=_unet(family),
            scheduler=_scheduler(family, prediction_type),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )


def build_random_pipeline(
    family: str = "sd1", seed: int = 0, prediction_type: str | None = None
) -> DiffusionPipeline:
    """A random-weight ``StableDiffusionPipeline`` / ``StableDiffusionXLPipeline`` in memory (float32, CPU).

    ``prediction_type`` is ``"epsilon"`` (the default) or ``"v_prediction"``. The same arguments always give
    bit-identical weights.
    """
    prediction_type = _check_arguments(family, prediction_type)
    with tempfile.TemporaryDirectory() as tmp:
        return _build(family, seed, prediction_type, Path(tmp))


def build_random_model(
    path: str | Path, family: str = "sd1", seed: int = 0, prediction_type: str | None = None
) -> Path:
    """Write a random-weight model as a diffusers folder at ``path`` (which must not exist or be empty).

    The folder loads offline with ``StableDiffusionPipeline.from_pretrained`` (SD1, SD2) or
    ``StableDiffusionXLPipeline.from_pretrained`` (SDXL). Returns ``path``.
    """
    prediction_type = _check_arguments(family, prediction_type)
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} already exists and is not an empty folder; choose a new path for the model.")
    path.mkdir(parents=True, exist_ok=True)
    pipeline = _build(family, seed, prediction_type, path)
    for name, component in pipeline.components.items():
        if component is not None and not name.startswith("tokenizer"):
            component.save_pretrained(path / name)
    pipeline.save_config(path)
    return path
