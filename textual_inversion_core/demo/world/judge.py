"""The judge: a small classifier trained on the world's own labels (shape, colour, background, style, fill).

It stands in for CLIP in the paper's metrics: its penultimate features for CLIP's image embedding (image-image
similarity), its attribute probabilities for CLIP's text-image similarity (does the picture show what the prompt
says?).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from .drawing import draw_scene
from .fitting import one_cycle
from .scenes import ATTRIBUTES, World

FEATURES = 128


class Judge(nn.Module):
    def __init__(self):
        super().__init__()
        def conv(cin, cout, kernel=3, stride=1):
            return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=1), nn.GroupNorm(8, cout), nn.SiLU()]
        # Strided from the first layer: the pictures' detail is no finer than 2 pixels, and the judge is trained
        # on every build of the world.
        self.body = nn.Sequential(*conv(3, 32, 4, 2), *conv(32, 64, 3, 2), *conv(64, 64), *conv(64, FEATURES, 3, 2),
                                  *conv(FEATURES, FEATURES), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleDict({name: nn.Linear(FEATURES, len(labels)) for name, labels in ATTRIBUTES.items()})

    def features(self, pictures: torch.Tensor) -> torch.Tensor:
        """``[N, 3, 64, 64]`` pictures in [0, 1] to ``[N, 128]`` features."""
        return self.body(pictures * 2 - 1)

    def forward(self, pictures: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.features(pictures)
        return {name: head(features) for name, head in self.heads.items()}

    @torch.no_grad()
    def read(self, pictures: torch.Tensor) -> list[dict[str, str]]:
        """What the judge sees in each picture: the most likely label of every attribute."""
        logits = self.eval()(pictures)
        picks = {name: logit.argmax(dim=1).tolist() for name, logit in logits.items()}
        return [{name: ATTRIBUTES[name][picks[name][i]] for name in ATTRIBUTES} for i in range(len(pictures))]


def labels_of(scene) -> dict[str, int]:
    return {name: ATTRIBUTES[name].index(getattr(scene, name)) for name in ATTRIBUTES}


def scene_labels(scenes) -> dict[str, torch.Tensor]:
    return {name: torch.tensor([labels_of(s)[name] for s in scenes]) for name in ATTRIBUTES}


def scene_batch(world: World, rng: random.Random, size: int):
    scenes = [world.random_scene(rng) for _ in range(size)]
    return torch.from_numpy(np.stack([draw_scene(s) for s in scenes])).permute(0, 3, 1, 2), scene_labels(scenes)


def soften(pictures: torch.Tensor, generator: torch.Generator, most: float = 0.8) -> torch.Tensor:
    """Half the ``pictures`` blurred, each by a Gaussian of its own width up to ``most`` pixels: a generated
    picture is never as crisp as a drawn one, and a judge that knew crisp pictures only read every softened one as
    a plain photo (as CLIP would not)."""
    n = len(pictures)
    sigma = torch.rand(n, generator=generator) * most * (torch.rand(n, generator=generator) < 0.5)
    taps = torch.arange(-2, 3, dtype=torch.float32)
    kernel = torch.exp(-taps**2 / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(3, dim=0)  # one per channel
    flat = pictures.reshape(1, n * 3, *pictures.shape[2:])
    flat = nn.functional.conv2d(nn.functional.pad(flat, (2, 2, 0, 0), mode="replicate"),
                                kernel[:, None, None, :], groups=n * 3)
    flat = nn.functional.conv2d(nn.functional.pad(flat, (0, 0, 2, 2), mode="replicate"),
                                kernel[:, None, :, None], groups=n * 3)
    return flat.reshape(pictures.shape)


def train_judge(pictures: torch.Tensor, scenes, steps: int, batch: int = 64, seed: int = 0,
                progress: Callable[[int, float], None] = lambda step, loss: None) -> Judge:
    """A judge trained on the world's drawn ``pictures`` (uint8 ``[N, 3, 64, 64]``) and their ``scenes``' labels,
    every shape, held out or not, with its name."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    labels = scene_labels(scenes)
    judge = Judge()
    update = one_cycle(judge.parameters(), lr=2e-3, steps=steps, warmup=0.1, weight_decay=1e-4)
    for step in range(1, steps + 1):
        pick = torch.randint(len(pictures), (batch,), generator=generator)
        targets = {name: values[pick] for name, values in labels.items()}
        logits = judge(soften(pictures[pick].float() / 255, generator))
        progress(step, update(sum(nn.functional.cross_entropy(logits[name], targets[name]) for name in ATTRIBUTES)))
    return judge.eval().requires_grad_(False)


def tune_to_decoder(judge: Judge, pictures: torch.Tensor, scenes, reconstruct: Callable[[torch.Tensor], torch.Tensor],
                    steps: int, batch: int = 64, seed: int = 0,
                    progress: Callable[[int, float], None] = lambda step, loss: None) -> Judge:
    """A copy of ``judge`` trained on further with half of every batch as the world's autoencoder gives the
    pictures back (``reconstruct``), under their true labels: every picture the model makes comes out of that
    decoder, and a judge that knew drawn pictures only misread the decoder's softened edges and faded colours as
    other shapes and styles (as CLIP, trained on far more pictures than a world has, would not)."""
    generator = torch.Generator().manual_seed(seed)
    labels = scene_labels(scenes)
    tuned = Judge()
    tuned.load_state_dict(judge.state_dict())
    update = one_cycle(tuned.parameters(), lr=5e-4, steps=steps, warmup=0.1, weight_decay=1e-4)
    for step in range(1, steps + 1):
        pick = torch.randint(len(pictures), (batch,), generator=generator)
        drawn = pictures[pick].float() / 255
        with torch.no_grad():
            decoded = reconstruct(drawn[: batch // 2])
        logits = tuned.train()(torch.cat([decoded, soften(drawn[batch // 2:], generator)]))
        progress(step, update(sum(nn.functional.cross_entropy(logits[name], labels[name][pick]) for name in ATTRIBUTES)))
    return tuned.eval().requires_grad_(False)


def read_judge(file) -> Judge:
    """A judge saved with ``safetensors.torch.save_file(judge.state_dict(), file)``."""
    judge = Judge()
    judge.load_state_dict(load_file(file))
    return judge.eval().requires_grad_(False)


def judge_accuracy(judge: Judge, world: World, count: int = 512, seed: int = 1,
                   transform: Callable[[torch.Tensor], torch.Tensor] = lambda pictures: pictures) -> dict[str, float]:
    """The share of fresh pictures (passed through ``transform``) whose attributes the judge reads right, per
    attribute."""
    pictures, targets = scene_batch(world, random.Random(f"judge-test-{seed}"), count)
    read = judge.read(torch.cat([transform(pictures[i:i + 128]) for i in range(0, count, 128)]))
    return {name: float(np.mean([ATTRIBUTES[name].index(r[name]) == t for r, t in zip(read, targets[name].tolist())]))
            for name in ATTRIBUTES}
