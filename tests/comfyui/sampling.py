"""API-form graphs that turn prompts into latents, so tests can compare what two conditionings do exactly.

Each ``sample`` adds CLIP Text Encode → KSampler (one Euler step, CFG 1, a fixed seed) → Save Latent; equal
conditionings give bit-identical latents, different ones do not.
"""

from __future__ import annotations

import itertools

import safetensors.torch
import torch

SIZE = 64


class Graph:
    def __init__(self, checkpoint: str):
        self.nodes: dict[str, dict] = {}
        self._ids = itertools.count(1)
        loader = self.add("CheckpointLoaderSimple", ckpt_name=checkpoint)
        self.model, self.clip, self.vae = [loader, 0], [loader, 1], [loader, 2]
        self.latent = [self.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1), 0]
        self.empty = [self.add("CLIPTextEncode", clip=self.clip, text=""), 0]
        self._saved: list[str] = []

    def add(self, class_type: str, **inputs) -> str:
        node_id = str(next(self._ids))
        self.nodes[node_id] = {"class_type": class_type, "inputs": inputs}
        return node_id

    def sample(self, clip: list, text: str) -> str:
        """Sample ``text`` encoded by ``clip``; returns the key of the latent in ``run``'s result."""
        positive = [self.add("CLIPTextEncode", clip=clip, text=text), 0]
        samples = self.add(
            "KSampler", model=self.model, positive=positive, negative=self.empty, latent_image=self.latent,
            seed=0, steps=1, cfg=1.0, sampler_name="euler", scheduler="normal", denoise=1.0,
        )
        saver = self.add("SaveLatent", samples=[samples, 0], filename_prefix="latents/test")
        self._saved.append(saver)
        return saver

    def run(self, server) -> dict[str, torch.Tensor]:
        entry = server.run(self.nodes)
        latents = {}
        for saver in self._saved:
            found = entry["outputs"][saver]["latents"][0]
            path = server.output / found["subfolder"] / found["filename"]
            latents[saver] = safetensors.torch.load_file(path)["latent_tensor"]
        return latents
