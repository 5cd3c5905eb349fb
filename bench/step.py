"""Seconds per textual-inversion step on this machine, against the FLOP floor measured in the same run.

On an SD1.5-architecture model with random weights (built here in diffusers format, or ``--model``), one run
measures and prints:

- the machine's matmul and convolution rates in float32 and in half precision (GFLOP/s), and PyTorch's
  attention's (forward and backward on SD1.5's largest self-attention);
- the FLOPs of one training step (text encoder, UNet forward and the backward to the word's vectors), counted
  by torch's FlopCounterMode;
- per resolution (batch 1): the median seconds per step after warm-up, the peak memory (RSS; VRAM on a GPU) and
  the one-off latent-cache time, for the defaults a user gets (``default``: what ``python -m
  textual_inversion_core train`` does), the same in float32 (``fp32``) and diffusers' example trainer's step
  (``example``: float32, VAE encode every step, gradient of the whole token-embedding table), and with
  ``--comfyui`` the Train Embedding path through ComfyUI's own model objects on the same weights (``comfyui``:
  as ComfyUI loads them on this device; ``comfyui-bf16``: as ComfyUI started with ``--bf16-unet`` does);
- whether the goals are met, at each resolution: the default step at most a third of the example's, at least 70 %
  of the float32 FLOP floor, at most half the example's peak RSS, and ComfyUI's step within 1.2x the core's;
- the efficiency: the FLOP floor (the step's matmul FLOPs at the matmul rate plus its convolution FLOPs at the
  convolution rate) over the measured step, for the float32 rates and for the half-precision rates;
- the kernel floor: the same with the attention FLOPs at the attention rate, i.e. the step if every kernel ran
  as fast as PyTorch's own does here, and how it compares with the example's step (what is reachable without a
  faster attention kernel).

Every run happens in a fresh process, so peak memory figures do not contaminate each other, and starts once the
machine is quiet; a run that other processes disturbed is measured again.

    python bench/step.py [--model DIR] [--sizes 256 512] [--warmup 2] [--steps 5] [--runs default fp32 example]
                         [--comfyui] [--device auto] [--quiet-load 1.5] [--patience 180] [--retries 2] [--json]

``--model DIR`` uses that diffusers folder, or builds the random model there first when DIR does not exist
(about 4.4 GB; later runs reuse it). ``--comfyui`` needs ``COMFYUI_PATH`` (and runs ComfyUI with
``COMFYUI_PYTHON``, default this Python).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from report import floors, goals, kernel_floors, print_table
from sd15_model import build_sd15_model

REPOSITORY = Path(__file__).resolve().parents[1]
RUNS = ("example", "fp32", "default")
TOKEN = "<bench-ball>"
INIT_TEXT = "ball"
PICTURES = 4


# ---------------------------------------------------------------------------------------------------- machine


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(fn, device: torch.device, repeats: int = 5, budget: float = 2.0) -> float:
    """The fastest of several timed calls: what the hardware can do, with the least of other processes' noise."""
    fn()
    synchronize(device)
    times = []
    while len(times) < repeats or (sum(times) < budget and len(times) < 50):
        started = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return min(times)


def measure_rates(device: torch.device, half: torch.dtype) -> dict:
    """GFLOP/s of a large matmul and of a UNet-sized 3x3 convolution, in float32 and in ``half``."""
    big = device.type == "cuda"
    m, k = (8192, 8192) if big else (4096, 2048)
    batch, channels, side = (8, 640, 64) if big else (1, 320, 64)
    conv_flops = 2 * batch * channels * channels * 9 * side * side
    rates = {}
    for name, dtype in (("float32", torch.float32), (dtype_name(half), half)):
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, k, device=device, dtype=dtype)
        x = torch.randn(batch, channels, side, side, device=device, dtype=dtype)
        w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype)
        with torch.no_grad():
            rates[name] = {
                "matmul": 2 * m * k * k / best_seconds(lambda: a @ b, device) / 1e9,
                "conv": conv_flops / best_seconds(lambda: torch.nn.functional.conv2d(x, w, padding=1), device) / 1e9,
            }
            if device.type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available():
                # PyTorch sends float32 matmuls to MKL; oneDNN (which runs every CPU convolution) can be faster.
                am, bm = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
                seconds = best_seconds(lambda: torch._C._nn.mkldnn_linear(am, bm, None), device)
                rates[name]["matmul_onednn"] = 2 * m * k * k / seconds / 1e9
        rates[name]["attention"] = attention_rate(device, dtype, batch)
    return rates


def attention_rate(device: torch.device, dtype: torch.dtype, batch: int) -> float:
    """GFLOP/s of PyTorch's attention, forward and backward, on the shape of SD1.5's first self-attention at
    512 px (4096 tokens, 8 heads of 40): the step's attention runs at this rate, not at the matmul rate."""
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    shape = (batch, 8, 4096, 40)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape, device=device, dtype=dtype)

    def forward_and_backward():
        torch.autograd.grad(torch.nn.functional.scaled_dot_product_attention(q, k, v), (q, k, v), grad)

    flops = sdpa_flop_count(shape, shape, shape) + sdpa_backward_flop_count(shape, shape, shape, shape)
    return flops / best_seconds(forward_and_backward, device, repeats=3, budget=1.0) / 1e9


def machine_description(device: torch.device) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return {"device": str(device), "name": name, "threads": torch.get_num_threads(), "torch": torch.__version__}


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# ------------------------------------------------------------------------------------------------------ model


def concept_pictures(size: int, count: int = PICTURES):
    from textual_inversion_core.data import load_concept_folder
    from textual_inversion_core.demo import draw_concept_pictures

    with tempfile.TemporaryDirectory() as folder:
        draw_concept_pictures(Path(folder), count=count)
        return load_concept_folder(folder, resolution=size)


# ------------------------------------------------------------------------------------------ the runs (children)


def step_seconds(measured: list[float]) -> dict:
    """The measured steps' median, the figure every comparison uses, and their spread."""
    return {"seconds_per_step": statistics.median(measured), "step_min": min(measured), "step_max": max(measured)}


def dtype_name(dtype: torch.dtype | None) -> str | None:
    return str(dtype).removeprefix("torch.") if dtype else None


class StepClock:
    """Notes when each training step ends (the trainer waits for the device every step)."""

    def __init__(self):
        self.ends: list[float] = []
        self.first_elapsed = 0.0


def timed_training(trainer, frozen, pictures, warmup: int, steps: int, release_vae=None) -> dict:
    """Train for warm-up + measured steps with ``trainer`` (the core's trainer module); the median seconds per
    measured step and the one-off time before the first step (the latent cache). ``release_vae`` is called
    once the latents are cached, as the command line does when it renders no previews."""
    clock = StepClock()

    class Callbacks(trainer.TrainingCallbacks):
        def on_latents_cached(self):
            if release_vae is not None:
                release_vae()

        def on_step(self, report):
            clock.ends.append(time.perf_counter())
            if report.step == 1:
                clock.first_elapsed = report.elapsed

    config = trainer.TrainingConfig(token=TOKEN, init_text=INIT_TEXT, steps=warmup + steps, seed=0)
    started = time.perf_counter()
    result = trainer.train_embedding(frozen, pictures, config, Callbacks())
    ends = [started] + clock.ends
    durations = [b - a for a, b in zip(ends, ends[1:])]
    return {
        **step_seconds(durations[warmup:]),
        # The first interval also holds the one-off work before the first step: the latent cache, the init vectors.
        "cache_seconds": durations[0] - clock.first_elapsed,
        "final_loss": result.losses[-1],
    }


def cpu_flash_attention_flops(query, key, value, *args, out_val=None, **kwargs):
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value)


def cpu_flash_attention_backward_flops(grad_out, query, key, value, *args, out_val=None, **kwargs):
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out, query, key, value)


def count_step_flops(trainer, frozen, size: int) -> dict:
    """FLOPs of one training step (batch 1) by kind: convolutions, and the rest (matmuls and attention), of which
    attention."""
    from torch.utils.flop_counter import FlopCounterMode

    device = frozen.device
    generator = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(2, 1, 4, size // 8, size // 8, generator=generator).to(device)
    vectors = {name: torch.nn.Parameter(v.to(device)) for name, v in trainer.initial_vectors(frozen, INIT_TEXT, 1).items()}
    # The CPU's flash attention kernels are missing from torch's FLOP formulas; they are the usual attention's.
    aten = torch.ops.aten
    custom = {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        custom[aten._scaled_dot_product_flash_attention_for_cpu] = cpu_flash_attention_flops
        custom[aten._scaled_dot_product_flash_attention_for_cpu_backward] = cpu_flash_attention_backward_flops
    with FlopCounterMode(display=False, custom_mapping=custom) as counter:
        loss = trainer.batch_loss(frozen, latents, [f"a photo of a {TOKEN}"], TOKEN, vectors,
                                  torch.tensor([500], device=device), noise)
        loss.backward()
    by_op = counter.get_flop_counts()["Global"]
    conv = sum(n for op, n in by_op.items() if "convolution" in str(op))
    attention = sum(n for op, n in by_op.items() if "attention" in str(op))
    total = sum(by_op.values())
    return {"total": total, "conv": conv, "attention": attention, "other": total - conv}


def rss_high_water_mark() -> int | None:
    """The kernel's peak-RSS mark for this process, in bytes (Linux)."""
    try:
        return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        return None


LOADING_PEAK = [0]


def start_training_memory_watch() -> None:
    """Note the peak so far (loading) and reset the kernel's mark, so the peak seen from now on is training's."""
    LOADING_PEAK[0] = rss_high_water_mark() or 0
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory(device: torch.device) -> dict:
    """The whole run's peak RSS (loading included), the peak since start_training_memory_watch(), and on a GPU
    the peak of allocated VRAM."""
    training = rss_high_water_mark()
    whole = max(LOADING_PEAK[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux counts KiB
    memory = {"peak_rss_bytes": whole, "train_rss_bytes": training}
    if device.type == "cuda":
        memory["peak_vram_bytes"] = torch.cuda.max_memory_allocated(device)
    return memory


def run_project(args) -> dict:
    """The project's trainer as the command line runs it (``default``) or with float32 weights (``fp32``)."""
    sys.path.insert(0, str(REPOSITORY))
    from textual_inversion_core import trainer
    from textual_inversion_core.cli import weights_dtype
    from textual_inversion_core.diffusers_backend import load_diffusers_model, resolve_device

    device = resolve_device(args.device)
    dtype = weights_dtype("auto" if args.child == "default" else "float32", device)
    pictures = concept_pictures(args.size)
    model = load_diffusers_model(args.model, device=device, dtype=dtype)
    frozen = model.frozen_model()
    start_training_memory_watch()
    result = timed_training(trainer, frozen, pictures, args.warmup, args.steps, release_vae=model.release_vae)
    result.update(peak_memory(device))
    result["dtype"] = dtype
    result["autocast"] = dtype_name(frozen.autocast_dtype)
    if args.count_flops:
        result["flops"] = count_step_flops(trainer, frozen, args.size)
    return result


def run_example(args) -> dict:
    """One step of diffusers' examples/textual_inversion/textual_inversion.py, as it runs by default (float32,
    no mixed precision): the VAE encodes the picture every step, the text encoder's whole token-embedding table
    gets a gradient and an AdamW update, and every row but the new word's is restored afterwards."""
    sys.path.insert(0, str(REPOSITORY))
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from textual_inversion_core.diffusers_backend import resolve_device

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


def run_comfyui(args) -> dict:
    """The Train Embedding node's path (frozen_model, training_session, train_embedding) on ComfyUI's own MODEL,
    CLIP and VAE, loaded by ComfyUI from the same diffusers folder, on the CPU unless a GPU is asked for; as
    ComfyUI started with ``--bf16-unet`` for the ``comfyui-bf16`` run (the UNet stored in bfloat16)."""
    # The core from here only for the pictures; the extension imported as ComfyUI imports it.
    sys.path[:0] = [os.environ["COMFYUI_PATH"], str(REPOSITORY)]
    import comfy.cli_args

    if args.device == "cpu" or (args.device == "auto" and not torch.cuda.is_available()):
        comfy.cli_args.args.cpu = True
    comfy.cli_args.args.bf16_unet = args.child == "comfyui-bf16"
    from extension_import import extension_module

    comfy_model = extension_module(REPOSITORY, "nodes.comfy_model")
    trainer = extension_module(REPOSITORY, "textual_inversion_core.trainer")

    pictures = concept_pictures(args.size)
    with torch.inference_mode():  # as ComfyUI runs every node
        model, clip, vae = load_in_comfyui(Path(args.model))
        frozen = comfy_model.frozen_model(model, clip, vae)
        start_training_memory_watch()
        with comfy_model.training_session(model, clip):
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


CHILDREN = {"default": run_project, "fp32": run_project, "example": run_example, "comfyui": run_comfyui,
            "comfyui-bf16": run_comfyui}


def wait_for_quiet(threshold: float, patience: float) -> None:
    """Wait (at most ``patience`` seconds) until the 1-minute load average is below ``threshold``: timings taken
    while other processes share the cores measure them as much as this one."""
    deadline = time.monotonic() + patience
    while (load_average() or 0) >= threshold and time.monotonic() < deadline:
        time.sleep(5)


def run_child(kind: str, size: int, args, count_flops: bool = False) -> dict:
    """One run in a fresh process, after waiting for a quiet machine; a run that other processes disturbed (its
    steps spread more than 25 %, or the load ended well above this run's own threads) is measured again, up to
    ``--retries`` times, and the run with the lowest median kept."""
    python = os.environ.get("COMFYUI_PYTHON", sys.executable) if kind.startswith("comfyui") else sys.executable
    command = [python, str(Path(__file__).resolve()), "--child", kind, "--size", str(size), "--model", str(args.model),
               "--warmup", str(args.warmup), "--steps", str(args.steps), "--device", args.device]
    if count_flops:
        command.append("--count-flops")
    best = None
    for attempt in range(1 + args.retries):
        wait_for_quiet(args.quiet_load, args.patience)
        load = load_average()
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"The {kind} run at {size} px failed:\n{finished.stderr[-4000:]}")
        result = json.loads(finished.stdout.strip().splitlines()[-1])
        result["load_before"], result["load_after"] = load, load_average()
        if best is None or result["seconds_per_step"] < best["seconds_per_step"]:
            best = result
        # This run's own threads bring the load to about the number of cores; well above means company.
        crowded = (result["load_after"] or 0) > torch.get_num_threads() + 1
        if result["step_max"] <= 1.25 * result["step_min"] and not crowded:
            break
        print(f"  steps {result['step_min']:.2f}-{result['step_max']:.2f} s, load {load} -> {result['load_after']}; "
              "measuring again", file=sys.stderr)
    best["attempts"] = attempt + 1
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="diffusers folder (built there if missing)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--comfyui", action="store_true", help="also time the Train Embedding path in ComfyUI")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet-load", type=float, default=1.5,
                        help="before each run, wait for the 1-minute load average to fall below this (default 1.5)")
    parser.add_argument("--patience", type=float, default=180, help="seconds to wait for that at most (default 180)")
    parser.add_argument("--retries", type=int, default=2, help="times to re-measure a disturbed run (default 2)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        # ComfyUI may run in a Python of its own, with another torch.
        print(json.dumps({**CHILDREN[args.child](args), "torch": torch.__version__}))
        return
    if args.comfyui and not os.environ.get("COMFYUI_PATH"):
        parser.error("--comfyui needs COMFYUI_PATH (the ComfyUI folder) and, if it has its own Python, COMFYUI_PYTHON.")

    sys.path.insert(0, str(REPOSITORY))
    from textual_inversion_core.diffusers_backend import resolve_device
    from textual_inversion_core.precision import native_compute_dtype

    device = resolve_device(args.device)
    half = native_compute_dtype(device)
    half = half if half != torch.float32 else torch.bfloat16
    with tempfile.TemporaryDirectory() as scratch:
        if args.model is None:
            args.model = Path(scratch) / "sd15-random"
        if not args.model.exists():
            print(f"building the random SD1.5-architecture model in {args.model} ...", file=sys.stderr)
            build_sd15_model(args.model)
        report = {"machine": machine_description(device), "native_dtype": str(native_compute_dtype(device)),
                  "load_start": load_average(), "rates": measure_rates(device, half), "sizes": {}}
        kinds = [k for k in RUNS if k in args.runs] + (["comfyui", "comfyui-bf16"] if args.comfyui else [])
        for size in args.sizes:
            entry = {"runs": {}}
            for kind in kinds:
                print(f"{size} px: {kind} ...", file=sys.stderr)
                counter = "default" if "default" in kinds else "fp32"
                run = run_child(kind, size, args, count_flops=kind == counter)
                if "flops" in run:
                    entry["flops"] = run.pop("flops")
                entry["runs"][kind] = run
            report["sizes"][size] = entry
        # The machine's rates are the best seen at the start and at the end, so a busy moment cannot lower them.
        again = measure_rates(device, half)
        for precision, rates in report["rates"].items():
            for kind, value in rates.items():
                rates[kind] = max(value, again[precision][kind])
        report["load_end"] = load_average()
        for entry in report["sizes"].values():
            if "flops" in entry:
                entry["floor_seconds"] = floors(entry["flops"], report["rates"])
                entry["kernel_floor_seconds"] = kernel_floors(entry["flops"], report["rates"])
            entry["goals"] = goals(entry)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
