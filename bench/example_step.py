"""Diffusers' example trainer's step (examples/textual_inversion/textual_inversion.py), re-implemented on the
same diffusers folder: what the project's step is compared with."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from measure import peak_memory, start_training_memory_watch, step_seconds, synchronize
from training_run import concept_pictures


def run_example(args) -> dict:
    """One step of diffusers' examples/textual_inversion/textual_inversion.py, as it runs by default (float32,
    no mixed precision): the VAE encodes the picture every step, the text encoder's whole token-embedding table
    gets a gradient and an AdamW update, and every row but the new word's is restored afterwards."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from textual_inversion_core.precision import resolve_device

    device = resolve_device(args.device)
    folder = Path(args.model)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").to(device)
    vae = AutoencoderKL.from_pretrained(folder / "vae").to(device)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet").to(device)
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    # The example adds the placeholder to the tokenizer and grows the table by one row.
    text_encoder.resize_token_embeddings(text_encoder.get_input_embeddings().num_embeddings + 1)
    placeholder = text_encoder.get_input_embeddings().num_embeddings - 1
    vae.requires_grad_(False)
    unet.requires_grad_(False)
    text_model = getattr(text_encoder, "text_model", text_encoder)  # transformers 5 dropped the wrapper
    text_model.encoder.requires_grad_(False)
    text_model.final_layer_norm.requires_grad_(False)
    text_model.embeddings.position_embedding.requires_grad_(False)
    table = text_encoder.get_input_embeddings().weight
    optimizer = torch.optim.AdamW([table], lr=5e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    original = table.detach().clone()
    keep = torch.ones(table.shape[0], dtype=torch.bool)
    keep[placeholder] = False
    ids = tokenizer("a photo of a ball", padding="max_length", max_length=tokenizer.model_max_length,
                    return_tensors="pt").input_ids
    ids[0, 1 + len(tokenizer("a photo of a", add_special_tokens=False).input_ids)] = placeholder  # "ball"
    ids = ids.to(device)
    pictures = concept_pictures(args.size)
    text_encoder.train()
    start_training_memory_watch()

    times = []
    for step in range(args.warmup + args.steps):
        pixels = (pictures[step % len(pictures)].pixels[None] * 2 - 1).to(device)
        started = time.perf_counter()
        latents = vae.encode(pixels).latent_dist.sample().detach() * vae.config.scaling_factor
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (1,), device=device).long()
        noisy = scheduler.add_noise(latents, noise, timesteps)
        hidden = text_encoder(ids)[0]
        prediction = unet(noisy, timesteps, hidden).sample
        loss = torch.nn.functional.mse_loss(prediction.float(), noise.float(), reduction="mean")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            table[keep] = original[keep]
        loss.item()
        synchronize(device)
        times.append(time.perf_counter() - started)
    result = {**step_seconds(times[args.warmup:]), "cache_seconds": None, "dtype": "float32", "autocast": None}
    result.update(peak_memory(device))
    return result
