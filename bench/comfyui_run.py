"""The Train Embedding node's path timed inside ComfyUI: the diffusers folder loaded by ComfyUI's own loaders,
and the extension imported as ComfyUI imports a custom node. Runs in ComfyUI's Python (``COMFYUI_PYTHON``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from extension_import import extension_module
from measure import dtype_name, peak_memory, start_training_memory_watch
from training_run import concept_pictures, timed_training

REPOSITORY = Path(__file__).resolve().parents[1]


def run_comfyui(args) -> dict:
    """The Train Embedding node's path (frozen_model, training_session, train_embedding) on ComfyUI's own MODEL,
    CLIP and VAE, loaded by ComfyUI from the same diffusers folder, on the CPU unless a GPU is asked for; as
    ComfyUI started with ``--bf16-unet`` for the ``comfyui-bf16`` run (the UNet stored in bfloat16)."""
    # ComfyUI's modules ahead of this checkout's (its nodes.py, not this folder's nodes/). The core from here only
    # for the pictures; the extension imported as ComfyUI imports it.
    sys.path.insert(0, os.environ["COMFYUI_PATH"])
    import comfy.cli_args

    if args.device == "cpu" or (args.device == "auto" and not torch.cuda.is_available()):
        comfy.cli_args.args.cpu = True
    comfy.cli_args.args.bf16_unet = args.child == "comfyui-bf16"

    comfy_host = extension_module(REPOSITORY, "nodes.comfy_host")
    trainer = extension_module(REPOSITORY, "textual_inversion_core.training")

    pictures = concept_pictures(args.size)
    with torch.inference_mode():  # as ComfyUI runs every node
        model, clip, vae = load_in_comfyui(Path(args.model))
        frozen = comfy_host.frozen_model(model, clip, vae)
        start_training_memory_watch()
        with comfy_host.training_session(model, clip):
            result = timed_training(trainer, frozen, pictures, args.warmup, args.steps)
    device = frozen.device
    result.update(peak_memory(device))
    base = model.model
    result["dtype"] = dtype_name(base.get_dtype())  # as stored; ComfyUI may cast per call
    result["autocast"] = dtype_name(frozen.autocast_dtype)
    return result


def load_in_comfyui(folder: Path):
    """MODEL, CLIP and VAE from a diffusers folder, loaded by ComfyUI's own loaders (as its diffusers loader does)."""
    import comfy.sd
    import comfy.utils

    weights = "diffusion_pytorch_model.safetensors"
    model = comfy.sd.load_diffusion_model(str(folder / "unet" / weights))
    state = comfy.utils.load_torch_file(str(folder / "text_encoder" / "model.safetensors"), safe_load=True)
    # transformers 5 saves CLIP without its "text_model." prefix; ComfyUI reads the classic layout.
    state = {k if k.startswith(("text_model.", "text_projection")) else f"text_model.{k}": v for k, v in state.items()}
    clip = comfy.sd.load_text_encoder_state_dicts([state])
    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(folder / "vae" / weights), safe_load=True))
    return model, clip, vae
