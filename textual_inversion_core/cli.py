"""``python -m textual_inversion_core``: train, inspect, convert embeddings, and a self-contained demo."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .data import CROP_MODES, load_concept_folder
from .embedding import EmbeddingError
from .formats import EMBEDDING_FORMATS, describe_embedding, load_embedding, save_embedding
from .loss_plot import render_loss_plot
from .precision import weights_dtype
from .schedules import SCHEDULE_KINDS
from .templates import TEMPLATE_KINDS
from .trainer import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_STEPS,
    StepReport,
    TrainingCallbacks,
    TrainingConfig,
    TrainingDiverged,
    train_embedding,
)


class CommandError(Exception):
    """Input the command cannot use; printed as the reason, with exit status 2."""


def learning_rate(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # the A1111 step syntax; TrainingConfig.validate() explains a malformed one


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"


class ConsoleProgress(TrainingCallbacks):
    """A one-line progress bar on stderr, checkpoints and previews beside the output, and Ctrl-C to stop."""

    def __init__(self, out: Path, file_format: str, overwrite: bool, preview=None, release_vae=None):
        self.out, self.file_format, self.overwrite, self.preview = out, file_format, overwrite, preview
        self.release_vae = release_vae
        self.stop_requested = False
        self.interactive = sys.stderr.isatty()
        self.last_print = 0.0

    def on_latents_cached(self) -> None:
        # Without previews the VAE's work is done: its memory goes to training's activations instead.
        if self.preview is None and self.release_vae is not None:
            self.release_vae()

    def request_stop(self, *_):
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        print("\nStopping after this step and saving what was learned (Ctrl-C again to abort).", file=sys.stderr)

    def should_stop(self) -> bool:
        return self.stop_requested

    def on_step(self, report: StepReport) -> None:
        now = time.monotonic()
        # A terminal gets a live bar; a log file gets a line every 10 s rather than thousands of lines.
        if not self.interactive and now - self.last_print < 10 and report.step != report.total:
            return
        self.last_print = now
        done = report.step / report.total
        bar = "#" * int(done * 24)
        line = (f"step {report.step}/{report.total} [{bar:<24}] loss {report.loss:.4f} "
                f"lr {report.learning_rate:.2e} {format_seconds(report.elapsed)}<{format_seconds(report.eta)}")
        print(("\r" + line) if self.interactive else line, end="" if self.interactive else "\n",
              file=sys.stderr, flush=True)
        if self.interactive and report.step == report.total:
            print(file=sys.stderr)

    def on_checkpoint(self, embedding, step: int) -> None:
        save_embedding(embedding, checkpoint_path(self.out, step), format=self.file_format, overwrite=self.overwrite)

    def on_preview(self, embedding, step: int) -> None:
        if self.preview is not None:
            self.preview(embedding).save(preview_path(self.out, step))


def checkpoint_path(out: Path, step: int) -> Path:
    return out.with_name(f"{out.stem}-step{step}{out.suffix}")


def preview_path(out: Path, step: int) -> Path:
    return out.with_name(f"{out.stem}-preview-step{step}.png")


def loss_plot_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}-loss.png")


def planned_outputs(args, config: TrainingConfig) -> list[Path]:
    out = Path(args.out)
    paths = [out, loss_plot_path(out)]
    paths += [checkpoint_path(out, s) for s in range(args.save_every, config.steps, args.save_every)] \
        if args.save_every else []
    paths += [preview_path(out, s) for s in range(args.preview_every, config.steps + 1, args.preview_every)] \
        if args.preview_every else []
    return paths


def cmd_train(args) -> int:
    from .diffusers_backend import load_diffusers_model, resolve_device

    config = TrainingConfig(
        token=args.token, init_text=args.init, num_vectors=args.vectors, steps=args.steps,
        learning_rate=args.lr, lr_schedule=args.lr_schedule, warmup_steps=args.warmup, batch_size=args.batch,
        grad_accum=args.grad_accum, max_grad_norm=args.max_grad_norm, template=args.template, seed=args.seed,
        min_snr_gamma=args.min_snr_gamma, flip=not args.no_flip, checkpoint_every=args.save_every,
        preview_every=args.preview_every,
    )
    config.validate()
    out = Path(args.out)
    file_format = args.format  # None: save_embedding picks the format from the file ending
    # Refuse before an hour of training, not after it.
    existing = [str(p) for p in planned_outputs(args, config) if p.exists()]
    if existing and not args.overwrite:
        raise CommandError(f"would overwrite {', '.join(existing)}; choose another --out or pass --overwrite.")
    if args.preview_every and not args.preview_prompt:
        args.preview_prompt = f"a photo of {args.token}"
    resume = load_embedding(args.resume) if args.resume else None
    images = load_concept_folder(args.images, args.resolution, args.crop)
    print(f"{len(images)} pictures from {args.images} at {args.resolution}px", file=sys.stderr)

    device = resolve_device(args.device)
    model = load_diffusers_model(args.model, device=device, dtype=weights_dtype(args.dtype, device))
    frozen = model.frozen_model()
    print(f"model: {args.model} ({frozen.family}, {model.prediction_type}) on {frozen.device}", file=sys.stderr)
    preview = (lambda emb: model.render_preview(emb, args.preview_prompt, seed=args.seed,
                                                resolution=args.resolution)) if args.preview_every else None
    progress = ConsoleProgress(out, file_format, args.overwrite, preview, release_vae=model.release_vae)

    previous = signal.signal(signal.SIGINT, progress.request_stop)
    try:
        result = train_embedding(frozen, images, config, progress, resume=resume)
    except TrainingDiverged as diverged:
        save_embedding(diverged.last_good, out, format=file_format, overwrite=args.overwrite)
        raise CommandError(f"{diverged} Saved the last good vectors to {out}.") from None
    finally:
        signal.signal(signal.SIGINT, previous)

    out.parent.mkdir(parents=True, exist_ok=True)
    written = save_embedding(result.embedding, out, format=file_format, overwrite=args.overwrite)[0]
    first_step = result.steps_done - len(result.losses) + 1
    render_loss_plot(result.losses, title=f"{args.token} loss", first_step=first_step).save(loss_plot_path(out))
    state = "stopped early at" if result.stopped_early else "trained for"
    loss = result.embedding.metadata.get("loss_last")
    print(f"{args.token} {state} step {result.steps_done}; final loss {loss}; wrote {written} "
          f"and {loss_plot_path(out)}", file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    embedding = load_embedding(args.file, token=args.token)
    description = describe_embedding(embedding)
    if args.json:
        print(json.dumps(description, indent=2, default=str))
        return 0
    print(f"token:    {description['token']}")
    print(f"family:   {description['family'] or 'unknown'}")
    print(f"vectors:  {description['num_vectors']}")
    print("widths:   " + ", ".join(f"{name} {width}" for name, width in description["widths"].items()))
    for key, value in sorted(description["metadata"].items()):
        print(f"  {key}: {value}")
    return 0


def cmd_convert(args) -> int:
    embedding = load_embedding(args.input, token=args.token)
    out = Path(args.output)
    written = save_embedding(embedding, out, format=args.format, overwrite=args.overwrite)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out), steps=args.steps, overwrite=args.overwrite)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m textual_inversion_core",
                                     description="Textual Inversion: teach Stable Diffusion a new word.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="learn an embedding from a folder of pictures")
    train.add_argument("--model", required=True, help="a local diffusers model folder (SD1.x, SD2.x or SDXL)")
    train.add_argument("--images", required=True, help="a folder of 3-5 pictures of the concept")
    train.add_argument("--token", required=True, help="the new pseudo-word, e.g. '<my-cat>'")
    train.add_argument("--init", required=True, help="a coarse word to start from, e.g. 'cat'")
    train.add_argument("--out", required=True, help="the embedding file to write (.safetensors or .pt)")
    train.add_argument("--vectors", type=int, default=1, help="vectors per word (1-75; default 1)")
    train.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"default {DEFAULT_STEPS}")
    train.add_argument("--lr", type=learning_rate, default=DEFAULT_LEARNING_RATE,
                       help=f"a rate or steps like '0.005:100, 1e-3:1000, 1e-5' (default {DEFAULT_LEARNING_RATE})")
    train.add_argument("--lr-schedule", choices=SCHEDULE_KINDS, default="constant")
    train.add_argument("--warmup", type=int, default=0, help="linear warm-up steps")
    train.add_argument("--batch", type=int, default=1)
    train.add_argument("--grad-accum", type=int, default=1)
    train.add_argument("--max-grad-norm", type=float, default=None, help="clip gradients to this norm")
    train.add_argument("--min-snr-gamma", type=float, default=None, help="min-SNR loss weighting, e.g. 5")
    train.add_argument("--resolution", type=int, default=512, help="multiple of 64 (default 512)")
    train.add_argument("--crop", choices=CROP_MODES, default="center")
    train.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    train.add_argument("--template", choices=TEMPLATE_KINDS, default="object")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save-every", type=int, default=0, help="write a checkpoint every N steps")
    train.add_argument("--preview-every", type=int, default=0, help="render a preview every N steps")
    train.add_argument("--preview-prompt", default=None, help="default 'a photo of <token>'")
    train.add_argument("--resume", default=None, help="an embedding file to continue training")
    train.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    train.add_argument("--dtype", default="auto", choices=("auto", "float32", "float16", "bfloat16"),
                       help="dtype the frozen model is stored and computed in (the vectors always train in float32); "
                            "auto: bfloat16 where the hardware runs it natively, float16 on older GPUs, else float32")
    train.add_argument("--format", choices=EMBEDDING_FORMATS, default=None, help="default from --out's suffix")
    train.add_argument("--overwrite", action="store_true", help="replace existing output files")
    train.set_defaults(run=cmd_train)

    info = commands.add_parser("info", help="describe an embedding file")
    info.add_argument("file")
    info.add_argument("--token", default=None, help="pick one placeholder in a file that holds several")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=cmd_info)

    convert = commands.add_parser("convert", help="rewrite an embedding in another format")
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--format", choices=EMBEDDING_FORMATS, default=None, help="default from the suffix")
    convert.add_argument("--token", default=None, help="pick one placeholder, or rename the word")
    convert.add_argument("--overwrite", action="store_true")
    convert.set_defaults(run=cmd_convert)

    demo = commands.add_parser("demo", help="train on a small random model, offline, in a few minutes")
    demo.add_argument("--out", default="demo_output", help="folder for the demo's files (default demo_output)")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default chosen for the demo)")
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier demo's files")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, EmbeddingError, ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
