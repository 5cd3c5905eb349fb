"""The world model: a Stable-Diffusion-1-family diffusers pipeline trained from scratch on the world's pictures.

Its parts have the shapes the product requires of an SD1 model (a CLIP text encoder 768 wide, a real CLIP BPE
tokenizer, a cross-attention UNet, an AutoencoderKL) at a size this machine trains in well under an hour: 64 px
pictures, 16x16 latents. The text encoder keeps its seeded random weights, its residual branches and position embeddings scaled down so
that each position's output is mostly its own word: a frozen random transformer then gives every word its own
vectors, the UNet learns to read them, and the build is spent where it matters, on the UNet.
The build is cached under a key of its recipe; the judge is trained in the same build and kept beside the model.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from ...objective import add_noise, min_snr_weights, prediction_target
from ..vocabulary import EOS, WORDS as PROMPT_WORDS, write_tokenizer
from .drawing import SIDE, draw_scene
from .fitting import one_cycle
from .judge import Judge, judge_accuracy, read_judge, train_judge, tune_to_decoder
from .scenes import WORDS as WORLD_WORDS, World, make_world

JUDGE_FILE = "judge.safetensors"
REPORT_FILE = "build.json"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything the build depends on; its hash names the cache folder."""

    world_seed: int = 0
    pictures: int = 20000
    judge_steps: int = 1600
    judge_extra_pictures: int = 2000  # dotted shapes in every colour, for the judge alone (World.judge_scene)
    judge_decoder_steps: int = 400  # the judge's further training on the autoencoder's reconstructions
    vae_steps: int = 1600
    vae_batch: int = 16
    unet_steps: int = 3600
    unet_batch: int = 32
    unet_lr: float = 1e-3
    ema_decay: float = 0.998
    caption_dropout: float = 0.1
    min_snr_gamma: float = 5.0
    prediction_type: str = "v_prediction"
    latent_channels: int = 16
    text_residual_scale: float = 0.03
    text_position_scale: float = 0.25
    version: int = 6  # raised whenever the world's drawing or captions change

    def key(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def default_cache() -> Path:
    root = os.environ.get("TEXTUAL_INVERSION_WORLD_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "textual-inversion-world"


def world_model_path(recipe: Recipe = Recipe(), cache: Path | None = None) -> Path:
    return (cache or default_cache()) / f"world-{recipe.world_seed}-{recipe.key()}"


def is_built(path: Path) -> bool:
    return (path / "model_index.json").is_file() and (path / JUDGE_FILE).is_file()


def load_judge(path: Path) -> Judge:
    return read_judge(path / JUDGE_FILE)


class _Progress:
    """One line per phase on stderr, rewritten in place: the phase, its step, the loss and the time left."""

    def __init__(self, phase: str, total: int):
        self.phase, self.total, self.started = phase, total, time.perf_counter()

    def __call__(self, step: int, loss: float) -> None:
        if step % 10 and step != self.total:
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / step * (self.total - step)
        bar = "#" * int(30 * step / self.total)
        print(f"\r  {self.phase:<6} [{bar:<30}] {step}/{self.total} loss {loss:.4f} "
              f"{elapsed:.0f} s, ~{left:.0f} s left", end="\n" if step == self.total else "", file=sys.stderr,
              flush=True)


def _text_encoder(tokenizer, recipe: Recipe) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=768, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id, eos_token_id=2, pad_token_id=1,
    )
    encoder = CLIPTextModel(config).eval().requires_grad_(False)
    # At its initial scale a random CLIP mixes every position into every other: prompts that differ in colour,
    # shape and background came out 0.95-0.98 alike (cosine) at every position, and the UNet learnt to ignore
    # the words. Scaled down, the changed words' positions are 0.19-0.33 alike.
    with torch.no_grad():
        for layer in encoder.encoder.layers:
            layer.self_attn.out_proj.weight.mul_(recipe.text_residual_scale)
            layer.mlp.fc2.weight.mul_(recipe.text_residual_scale)
        encoder.embeddings.position_embedding.weight.mul_(recipe.text_position_scale)
    return encoder


def _vae(recipe: Recipe) -> AutoencoderKL:
    # Three blocks: four-fold downsampling, 64 px pictures to 16x16 latents. More latent channels than SD's four:
    # a 4x4 patch where a shape's edge crosses a patterned background holds more than four numbers' worth. The
    # judge read the shapes in reconstructions right 51 % of the time with four channels, 74 % with eight.
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=16,
        latent_channels=recipe.latent_channels, sample_size=SIDE,
    )


def _unet(recipe: Recipe) -> UNet2DConditionModel:
    # Cross-attention at 8x8 and 4x4 only: at 16x16 attention costs most of the step and adds little for
    # pictures this simple. diffusers reads ``attention_head_dim`` as the number of heads: two heads 32 wide (32
    # heads 2 wide could hardly tell one word from another, and took twice the step).
    return UNet2DConditionModel(
        sample_size=SIDE // 4, in_channels=recipe.latent_channels, out_channels=recipe.latent_channels,
        block_out_channels=(32, 64, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=768, attention_head_dim=2, norm_num_groups=16,
    )


def _scheduler(recipe: Recipe) -> DDIMScheduler:
    # v-prediction, as SD2: an epsilon model's loss weighs its picture errors by the signal-to-noise ratio, next to
    # nothing at the high noise levels where a sample's layout (which shape, where) is decided. Trained alike for
    # 500 steps, an epsilon UNet's x0 estimates did not change when a caption's shape, colour or background was
    # swapped; a v UNet's got worse by 0.7 %, 11 % and 2 %.
    return DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                         prediction_type=recipe.prediction_type)


def draw_training_set(world: World, count: int, seed: int):
    """``count`` scenes of the world and their pictures (uint8 ``[N, 3, 64, 64]``)."""
    rng = random.Random(f"pictures-{seed}")
    scenes = [world.random_scene(rng) for _ in range(count)]
    return scenes, _draw_all(scenes)


def _draw_all(scenes) -> torch.Tensor:
    """``scenes`` drawn, uint8 ``[N, 3, 64, 64]`` (``[0, 3, 64, 64]`` for none)."""
    pictures = np.array([(draw_scene(s) * 255 + 0.5).astype(np.uint8) for s in scenes], dtype=np.uint8)
    return torch.from_numpy(pictures.reshape(-1, SIDE, SIDE, 3)).permute(0, 3, 1, 2).contiguous()


def draw_judge_set(world: World, scenes, pictures: torch.Tensor, extra: int, seed: int):
    """The judge's pictures: the model's, and ``extra`` more that only the judge sees (``World.judge_scene``)."""
    rng = random.Random(f"judge-pictures-{seed}")
    more = [world.judge_scene(rng) for _ in range(extra)]
    return list(scenes) + more, torch.cat([pictures, _draw_all(more)])


def _part_key(recipe: Recipe, *fields: str) -> str:
    """A key for a part of the build cached on its own: a hash of the recipe fields that part depends on."""
    return hashlib.sha256(json.dumps([getattr(recipe, f) for f in fields]).encode()).hexdigest()[:12]


def _cached_judge(pictures, scenes, recipe: Recipe, cache: Path) -> Judge:
    """The judge depends on the world's pictures alone, so a new recipe for the model reuses it."""
    key = _part_key(recipe, "world_seed", "pictures", "judge_extra_pictures", "judge_steps", "version")
    file = cache / f"judge-{recipe.world_seed}-{key}.safetensors"
    if file.is_file():
        return read_judge(file)
    judge = train_judge(pictures, scenes, recipe.judge_steps, seed=recipe.world_seed,
                        progress=_Progress("judge", recipe.judge_steps))
    cache.mkdir(parents=True, exist_ok=True)
    save_file(judge.state_dict(), file)
    return judge


def _cached_vae(pictures: torch.Tensor, recipe: Recipe, cache: Path) -> AutoencoderKL:
    """The autoencoder depends on the world's pictures and its own settings alone, so a recipe that changes only
    the UNet or the text encoder reuses it (a quarter of a build's time)."""
    key = _part_key(recipe, "world_seed", "pictures", "vae_steps", "vae_batch", "latent_channels", "version")
    folder = cache / f"vae-{recipe.world_seed}-{key}"
    if (folder / "config.json").is_file():
        return AutoencoderKL.from_pretrained(folder).eval().requires_grad_(False)
    vae = _train_vae(pictures, recipe)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    vae.save_pretrained(staging)
    staging.rename(folder)
    return vae


def _train_vae(pictures: torch.Tensor, recipe: Recipe) -> AutoencoderKL:
    generator = torch.Generator().manual_seed(recipe.world_seed)
    vae = _vae(recipe).train()
    # AdamW's own default weight decay, as the first builds had it.
    update = one_cycle(vae.parameters(), lr=2e-3, steps=recipe.vae_steps, warmup=0.05, weight_decay=1e-2)
    progress = _Progress("vae", recipe.vae_steps)
    for step in range(1, recipe.vae_steps + 1):
        pick = torch.randint(len(pictures), (recipe.vae_batch,), generator=generator)
        x = pictures[pick].float() / 127.5 - 1
        posterior = vae.encode(x).latent_dist
        # The shapes' colours cover a fifth of the pixels at most; weighted by saturation, the loss stops
        # trading them for the grey backgrounds (an unweighted VAE came out colour-blind).
        saturation = (x.amax(dim=1, keepdim=True) - x.amin(dim=1, keepdim=True)) / 2
        error = (vae.decode(posterior.sample(generator)).sample - x).abs()
        progress(step, update((error * (1 + 8 * saturation)).mean() + 1e-6 * posterior.kl().mean()))
    return vae.eval().requires_grad_(False)


def reconstructor(vae: AutoencoderKL):
    """Pictures in [0, 1] through the autoencoder and back, as the model's samples come out of its decoder."""
    @torch.no_grad()
    def reconstruct(pictures: torch.Tensor) -> torch.Tensor:
        return (vae.decode(vae.encode(pictures * 2 - 1).latent_dist.mode()).sample / 2 + 0.5).clamp(0, 1)
    return reconstruct


def judge_reads_reconstructions(judge: Judge, world: World, vae: AutoencoderKL) -> dict[str, float]:
    """``judge_accuracy`` on the autoencoder's reconstructions of fresh pictures: what the latent space keeps of
    what the judge reads, and so the most a model sampling in it can score."""
    return judge_accuracy(judge, world, transform=reconstructor(vae))


@torch.no_grad()
def _encode_all(vae: AutoencoderKL, pictures: torch.Tensor) -> torch.Tensor:
    return torch.cat([vae.encode(pictures[i:i + 256].float() / 127.5 - 1).latent_dist.mode()
                      for i in range(0, len(pictures), 256)])


class _CaptionStates:
    """The frozen text encoder's output per caption, computed once: the world has a few thousand captions."""

    def __init__(self, tokenizer, text_encoder):
        self.tokenizer, self.text_encoder, self.cache = tokenizer, text_encoder, {}

    @torch.no_grad()
    def __call__(self, captions: list[str]) -> torch.Tensor:
        missing = list(dict.fromkeys(c for c in captions if c not in self.cache))
        if missing:
            ids = self.tokenizer(missing, padding="max_length", max_length=77, truncation=True,
                                 return_tensors="pt").input_ids
            for caption, state in zip(missing, self.text_encoder(ids).last_hidden_state):
                self.cache[caption] = state.to(torch.float16)
        return torch.stack([self.cache[c] for c in captions]).float()


def _train_unet(world, scenes, latents, states: _CaptionStates, scheduler, recipe: Recipe) -> UNet2DConditionModel:
    rng = random.Random(f"captions-{recipe.world_seed}")
    generator = torch.Generator().manual_seed(recipe.world_seed)
    unet = _unet(recipe).train()
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    update = one_cycle(unet.parameters(), lr=recipe.unet_lr, steps=recipe.unet_steps, warmup=0.05, weight_decay=1e-2)
    alphas = scheduler.alphas_cumprod
    progress = _Progress("unet", recipe.unet_steps)
    for step in range(1, recipe.unet_steps + 1):
        pick = torch.randint(len(latents), (recipe.unet_batch,), generator=generator).tolist()
        captions = ["" if rng.random() < recipe.caption_dropout else world.caption(scenes[i], rng) for i in pick]
        x0 = latents[pick]
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, len(alphas), (len(pick),), generator=generator)
        noisy = add_noise(x0, noise, t, alphas)
        target = prediction_target(x0, noise, t, alphas, recipe.prediction_type)
        # Min-SNR weighting (Hang et al., 2023): the same model in fewer steps.
        weight = min_snr_weights(t, alphas, recipe.min_snr_gamma, recipe.prediction_type)
        error = (unet(noisy, t, states(captions)).sample - target).pow(2).mean(dim=(1, 2, 3))
        loss = update((weight * error).mean())
        decay = min(recipe.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters()):
                e.lerp_(p, 1 - decay)
        progress(step, loss)
    return ema


def build_world_model(recipe: Recipe = Recipe(), cache: Path | None = None) -> Path:
    """The world model's diffusers folder (with ``judge.safetensors`` and ``build.json`` beside it), built
    unless the cache holds it. The same recipe always builds the same weights."""
    path = world_model_path(recipe, cache)
    if is_built(path):
        return path
    started = time.perf_counter()
    torch.manual_seed(recipe.world_seed)
    world = make_world(recipe.world_seed)
    print(f"Building the concept world (seed {recipe.world_seed}) into {path}; a one-off, cached.", file=sys.stderr)
    scenes, pictures = draw_training_set(world, recipe.pictures, recipe.world_seed)
    print(f"  drew {len(scenes)} pictures in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    judge_scenes, judge_pictures = draw_judge_set(world, scenes, pictures, recipe.judge_extra_pictures,
                                                  recipe.world_seed)
    judge = _cached_judge(judge_pictures, judge_scenes, recipe, path.parent)
    vae = _cached_vae(pictures, recipe, path.parent)
    latents = _encode_all(vae, pictures)
    vae.register_to_config(scaling_factor=float(1 / latents.std()))
    latents = latents * vae.config.scaling_factor
    drawn_only_check = judge_reads_reconstructions(judge, world, vae)
    judge = tune_to_decoder(judge, judge_pictures, judge_scenes, reconstructor(vae), recipe.judge_decoder_steps,
                            seed=recipe.world_seed, progress=_Progress("judge+", recipe.judge_decoder_steps))
    vae_check = judge_reads_reconstructions(judge, world, vae)
    print("  the judge reads the autoencoder's reconstructions of fresh pictures: "
          + ", ".join(f"{k} {v:.0%}" for k, v in vae_check.items())
          + " (before it was trained on them: " + ", ".join(f"{k} {v:.0%}" for k, v in drawn_only_check.items())
          + ")", file=sys.stderr)

    staging = path.with_name(path.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = write_tokenizer(staging / "tokenizer", pad_token=EOS,
                                words=list(dict.fromkeys(PROMPT_WORDS + WORLD_WORDS)))
    text_encoder = _text_encoder(tokenizer, recipe)
    scheduler = _scheduler(recipe)
    unet = _train_unet(world, scenes, latents, _CaptionStates(tokenizer, text_encoder), scheduler, recipe)

    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    for name, component in pipeline.components.items():
        if component is not None and name != "tokenizer":
            component.save_pretrained(staging / name)
    pipeline.save_config(staging)
    save_file(judge.state_dict(), staging / JUDGE_FILE)
    report = {"recipe": dataclasses.asdict(recipe), "seconds": round(time.perf_counter() - started),
              "judge_accuracy": judge_accuracy(judge, world),
              "judge_accuracy_on_reconstructions": vae_check,
              "drawn_only_judge_accuracy_on_reconstructions": drawn_only_check,
              "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    (staging / REPORT_FILE).write_text(json.dumps(report, indent=2), encoding="utf-8")
    shutil.rmtree(path, ignore_errors=True)
    staging.rename(path)
    print(f"  built in {report['seconds']} s; the judge reads fresh pictures right: "
          + ", ".join(f"{k} {v:.0%}" for k, v in report["judge_accuracy"].items()), file=sys.stderr)
    return path
