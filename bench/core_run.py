"""The project's own runs: the core's trainer on the diffusers folder as the command line runs it (``default``:
the weights in the device's native compute dtype), with float32 weights (``fp32``), with ``--compile``
(``compiled``: its first step holds the compiling), and its pivotal LoRA stage as the command line runs it
(``lora``)."""

from __future__ import annotations

from flops import count_step_flops
from measure import dtype_name, peak_memory, start_training_memory_watch
from training_run import concept_pictures, timed_training


def run_project(args) -> dict:
    """The project's trainer as the command line runs it (``default``), with float32 weights (``fp32``) or
    compiled (``compiled``)."""
    from textual_inversion_core import training as trainer
    from textual_inversion_core.hosts.diffusers import load_diffusers_model
    from textual_inversion_core.precision import resolve_device, weights_dtype

    device = resolve_device(args.device)
    dtype = weights_dtype("float32" if args.child == "fp32" else "auto", device)
    pictures = concept_pictures(args.size)
    model = load_diffusers_model(args.model, device=device, dtype=dtype, compile=args.child == "compiled")
    frozen = model.frozen_model(release_vae_when_cached=True)  # as the command line, which renders no previews here
    start_training_memory_watch()
    result = timed_training(trainer, frozen, pictures, args.warmup, args.steps, lora=args.child == "lora")
    result.update(peak_memory(device))
    result["dtype"] = dtype
    result["autocast"] = dtype_name(frozen.autocast_dtype)
    if args.count_flops:
        result["flops"] = count_step_flops(trainer, frozen, args.size)
    return result
