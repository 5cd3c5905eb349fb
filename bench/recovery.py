"""Recovery benchmark: can the trainer find the word that really explains a concept?

A hidden target vector v* stands for a concept. On a fixed random-weight SD1-style text encoder (the real CLIP
module the trainer optimises through, with the word injected as in training), the concept is a Gaussian in
latent space whose mean is read off the encoder's output for a prompt containing v*. Its denoiser is the exact
optimal (posterior-mean) denoiser of that Gaussian, so v* minimises the denoising loss by construction. (An
untrained random UNet cannot serve here: its prediction barely depends on the text, so init, learned and target
words all score the same loss.) The trainer starts from an init word and learns a vector from 5 concept latents
alone. On held-out latents and fixed noise we measure the denoising loss with the init vector, the learned
vector and v*, and print the share of the gap the training closed:

    (L_init - L_learned) / (L_init - L_target)      aim: >= 0.9

The concept is given directly in latent space, so the trainer's latent encoder is the identity on latents.

    python bench/recovery.py [--steps N] [--lr RATE] [--batch N] [--eval-every N] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual_inversion_core.data import ConceptImage  # noqa: E402
from textual_inversion_core.hosts.diffusers import load_diffusers_model  # noqa: E402
from textual_inversion_core.objective import denoising_loss  # noqa: E402
from textual_inversion_core.demo.tiny_models import build_random_model  # noqa: E402
from textual_inversion_core.training import (  # noqa: E402
    DEFAULT_LEARNING_RATE,
    DEFAULT_STEPS,
    TrainingCallbacks,
    TrainingConfig,
    train_embedding,
)

TOKEN = "<hidden>"
PROMPT = "a photo of a [name]"
LATENT_SHAPE = (4, 8, 8)
SPREAD = 0.5  # the concept's standard deviation around its mean, per latent value


class LatentsAsPixels:
    """The identity latent encoder: a ConceptImage here carries its latents as its pixels."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels


def latents_to_image(latents: torch.Tensor) -> ConceptImage:
    # The caption fixes the prompt.
    return ConceptImage(pixels=latents, caption=PROMPT)


class GaussianConceptDenoiser:
    """The optimal ε-predictor for latents ~ N(mean(text), SPREAD²): E[ε | x_t] in closed form."""

    prediction_type = "epsilon"

    def __init__(self, alphas_cumprod: torch.Tensor, projection: torch.Tensor):
        self.alphas_cumprod = alphas_cumprod
        self.projection = projection

    def mean(self, cond) -> torch.Tensor:
        return (cond.context.float().mean(dim=1) @ self.projection).view(-1, *LATENT_SHAPE)

    def __call__(self, noisy, timesteps, cond):
        a = self.alphas_cumprod.to(noisy.device)[timesteps].float().view(-1, 1, 1, 1)
        return (1 - a).sqrt() * (noisy - a.sqrt() * self.mean(cond)) / (a * SPREAD**2 + 1 - a)


def encode(model, vectors, count: int):
    return model.prompt_encoder.encode([PROMPT.replace("[name]", TOKEN)] * count, TOKEN, vectors)


@torch.no_grad()
def sample_concept(model, vectors, count: int, seed: int) -> torch.Tensor:
    noise = torch.randn((count, *LATENT_SHAPE), generator=torch.Generator().manual_seed(seed))
    return model.denoiser.mean(encode(model, vectors, count)) + SPREAD * noise


@torch.no_grad()
def held_out_loss(model, latents, vectors, seed: int, draws: int = 16) -> float:
    """Mean denoising loss over fixed (noise, timestep) draws: the same draws for every vector."""
    generator = torch.Generator().manual_seed(seed)
    num_timesteps = model.denoiser.alphas_cumprod.shape[0]
    cond = encode(model, vectors, len(latents))
    total = 0.0
    for _ in range(draws):
        timesteps = torch.randint(num_timesteps, (len(latents),), generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        total += denoising_loss(model.denoiser, latents, cond, timesteps, noise).item()
    return total / draws


class GapProgress(TrainingCallbacks):
    """Measures the held-out gap closed at every checkpoint, to tell how many steps the recovery took."""

    def __init__(self, gap_closed):
        self.gap_closed, self.curve = gap_closed, []

    def on_checkpoint(self, embedding, step):
        self.curve.append((step, self.gap_closed(embedding.vectors)))


def run(steps: int, learning_rate: float | str, init_text: str, images: int, batch: int, seed: int,
        eval_every: int = 10) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        host = load_diffusers_model(build_random_model(Path(folder) / "model", family="sd1", seed=seed),
                                    device="cpu", dtype="float32")
    text_model = host.frozen_model()
    init_rows = text_model.prompt_encoder.word_vectors(init_text)["clip_l"]
    # The hidden word: a random direction with the norm of a real token embedding of this model.
    direction = torch.randn(1, init_rows.shape[1], generator=torch.Generator().manual_seed(seed + 1))
    target = {"clip_l": direction / direction.norm() * init_rows[:1].norm()}
    init = {"clip_l": init_rows[:1]}
    # A fixed random read-out of the text, scaled once so that the init word's concept mean lies one unit per
    # latent value from the target's: the concept is identifiable, but not trivially so.
    projection = torch.randn(init_rows.shape[1], LATENT_SHAPE[0] * LATENT_SHAPE[1] * LATENT_SHAPE[2],
                             generator=torch.Generator().manual_seed(seed + 5))
    with torch.no_grad():
        gap = encode(text_model, init, 1).context.mean(1) - encode(text_model, target, 1).context.mean(1)
        projection /= (gap @ projection).pow(2).mean().sqrt()
    model = dataclasses.replace(text_model, latent_encoder=LatentsAsPixels(),
                                denoiser=GaussianConceptDenoiser(text_model.denoiser.alphas_cumprod, projection))
    train_latents = sample_concept(model, target, images, seed=seed + 2)
    held_out = sample_concept(model, target, 64, seed=seed + 3)

    losses = {name: held_out_loss(model, held_out, vectors, seed=seed + 4)
              for name, vectors in (("init", init), ("target", target))}

    def gap_closed(vectors) -> float:
        learned = held_out_loss(model, held_out, vectors, seed=seed + 4)
        return (losses["init"] - learned) / (losses["init"] - losses["target"])

    progress = GapProgress(gap_closed)
    config = TrainingConfig(token=TOKEN, init_text=init_text, steps=steps, learning_rate=learning_rate,
                            batch_size=batch, seed=seed, flip=False, template="captions",
                            checkpoint_every=eval_every)
    started = time.perf_counter()
    result = train_embedding(model, [latents_to_image(x) for x in train_latents], config, progress)
    seconds = time.perf_counter() - started
    losses["learned"] = held_out_loss(model, held_out, result.embedding.vectors, seed=seed + 4)
    progress.curve.append((steps, gap_closed(result.embedding.vectors)))
    reached = next((step for step, gap in progress.curve if gap >= 0.9), None)
    return {
        "steps": steps,
        "learning_rate": learning_rate,
        "batch_size": batch,
        "init_text": init_text,
        "training_latents": images,
        "loss_init": losses["init"],
        "loss_learned": losses["learned"],
        "loss_target": losses["target"],
        "gap_closed": (losses["init"] - losses["learned"]) / (losses["init"] - losses["target"]),
        "steps_to_0.9": reached,
        "train_seconds": round(seconds, 1),
        "curve": [(step, round(gap, 3)) for step, gap in progress.curve],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--lr", default=str(DEFAULT_LEARNING_RATE))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--init", default="cat")
    parser.add_argument("--images", type=int, default=5, help="concept latents to train on (3-5 pictures)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=10, help="measure the gap every N steps")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        learning_rate: float | str = float(args.lr)
    except ValueError:
        learning_rate = args.lr
    figures = run(args.steps, learning_rate, args.init, args.images, args.batch, args.seed, args.eval_every)
    if args.json:
        print(json.dumps(figures))
        return
    curve = figures.pop("curve")
    for key, value in figures.items():
        print(f"{key:18} {value:.4f}" if isinstance(value, float) else f"{key:18} {value}")
    print("gap closed by step: " + ", ".join(f"{step}: {gap:.2f}" for step, gap in curve))


if __name__ == "__main__":
    main()
