"""``python -m textual_inversion_core``: train, inspect, convert embeddings, and a self-contained demo."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from .data import CROP_MODES
from .errors import UserError
from .formats import EMBEDDING_FORMATS, load_embedding, save_embedding
from .inspection import inspect_embedding
from .lora import LAYER_SETS
from .schedules import SCHEDULE_KINDS
from .templates import TEMPLATE_KINDS
from .training.norm_control import NORM_CONTROLS
from .validation import DEFAULT_GUIDANCE
from .train_job import TrainJob, run_train_job
from .training import DEFAULT_LEARNING_RATE, DEFAULT_STEPS, TrainingConfig


EVALUATION_SIZE = 256  # pictures are read at this size; CLIP then takes its own square from the middle


def learning_rate(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # the A1111 step syntax; TrainingConfig explains a malformed one


def word_steps(args) -> int:
    """--steps, or, when a saved word goes on into the LoRA stage, the steps it was trained for."""
    if args.steps is not None:
        return args.steps
    if args.resume and args.lora_steps:
        from .formats.pivotal_lora import load_snapshot

        return int(load_snapshot(args.resume).metadata.get("steps", 0))
    return DEFAULT_STEPS


def cmd_train(args) -> int:
    config = TrainingConfig(
        token=args.token, init_text=args.init, num_vectors=args.vectors, steps=word_steps(args),
        learning_rate=args.lr, lr_schedule=args.lr_schedule, warmup_steps=args.warmup, batch_size=args.batch,
        grad_accum=args.grad_accum, max_grad_norm=args.max_grad_norm, template=args.template, seed=args.seed,
        min_snr_gamma=args.min_snr_gamma, flip=not args.no_flip, checkpoint_every=args.save_every,
        preview_every=args.preview_every, norm_control=args.norm_control, norm_penalty=args.norm_penalty,
        unmasked_weight=args.unmasked_weight, lora_steps=args.lora_steps, lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha, lora_learning_rate=args.lora_lr, lora_layers=args.lora_layers,
        lora_word_learning_rate=args.lora_word_lr,
    )
    run_train_job(TrainJob(
        model=Path(args.model), images=Path(args.images), out=Path(args.out), config=config,
        resolution=args.resolution, crop=args.crop, device=args.device, dtype=args.dtype, compile=args.compile,
        file_format=args.format, overwrite=args.overwrite, resume=Path(args.resume) if args.resume else None,
        preview_prompts=tuple(args.preview_prompt or ()), preview_negative=args.preview_negative,
        preview_cfg=args.preview_cfg,
    ))
    return 0


def cmd_info(args) -> int:
    embedding = load_embedding(args.file, token=args.token)
    vocabularies = None
    if args.model:
        from .hosts.diffusers import load_vocabularies  # diffusers is slow to import; only --model needs it

        vocabularies = load_vocabularies(Path(args.model))
    report = inspect_embedding(embedding, vocabularies)
    print(json.dumps(report.as_dict(), indent=2, default=str) if args.json else report.text())
    return 0


def cmd_convert(args) -> int:
    embedding = load_embedding(args.input, token=args.token)
    out = Path(args.output)
    written = save_embedding(embedding, out, format=args.format, overwrite=args.overwrite)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .clip_vision import load_clip_vision
    from .data import load_concept_folder
    from .evaluation import score_reconstruction

    def pictures(folder: str):
        return torch.stack([i.pixels for i in load_concept_folder(folder, resolution=EVALUATION_SIZE)])

    extract = load_clip_vision(args.clip_vision)
    score = score_reconstruction(extract, pictures(args.generated), pictures(args.init_generated),
                                 pictures(args.concept))
    print(json.dumps(dataclasses.asdict(score), indent=2) if args.json else score.text())
    return 0


def cmd_demo(args) -> int:
    from .demo.run import run_demo

    return run_demo(Path(args.out), steps=args.steps, overwrite=args.overwrite, world=args.world)


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
    train.add_argument("--steps", type=int, default=None,
                       help=f"the word's steps (default {DEFAULT_STEPS}; with --resume and --lora-steps, the saved "
                            "word's own)")
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
    train.add_argument("--norm-control", choices=NORM_CONTROLS, default="off",
                       help="keep the vectors the size of real words: rescale (to the vocabulary's median norm "
                            "after every step) or penalty (a loss term towards the init word's norm)")
    train.add_argument("--norm-penalty", type=float, default=0.1, help="the penalty's weight (default 0.1)")
    train.add_argument("--unmasked-weight", type=float, default=0.0,
                       help="with masks (each picture's alpha channel, or name.mask.png beside it): how much the "
                            "loss outside the mask still counts, 0-1 (default 0)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save-every", type=int, default=0, help="write a checkpoint every N steps")
    train.add_argument("--preview-every", type=int, default=0,
                       help="every N steps, render the validation prompts into NAME-preview-stepN.png and keep that "
                            "step's word as NAME-stepN.safetensors")
    train.add_argument("--preview-prompt", action="append", default=None,
                       help="a validation prompt with the token in it ([name] also works); repeat for several "
                            "(default 'a photo of <token>')")
    train.add_argument("--preview-negative", default="", help="the validation's negative prompt")
    train.add_argument("--preview-cfg", type=float, default=DEFAULT_GUIDANCE,
                       help=f"the validation's CFG scale (default {DEFAULT_GUIDANCE:g})")
    train.add_argument("--lora-steps", type=int, default=0,
                       help="pivotal tuning: after the word's steps, train a LoRA on the UNet around it for this many "
                            "more; --out is then one .safetensors LoRA file carrying the word (the word alone goes "
                            "beside it as NAME-word.safetensors)")
    train.add_argument("--lora-rank", type=int, default=4, help="the LoRA's rank (default 4)")
    train.add_argument("--lora-alpha", type=float, default=None, help="the LoRA's alpha (default: the rank)")
    train.add_argument("--lora-lr", type=float, default=1e-4, help="the LoRA's learning rate (default 1e-4)")
    train.add_argument("--lora-layers", choices=LAYER_SETS, default="attention",
                       help="the UNet layers the LoRA adapts (default: the attention projections)")
    train.add_argument("--lora-word-lr", type=float, default=0.0,
                       help="the word's learning rate during the LoRA stage (default 0: the word stays fixed)")
    train.add_argument("--resume", default=None,
                       help="an embedding file, or a pivotal LoRA file, to continue training")
    train.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    train.add_argument("--dtype", default="auto", choices=("auto", "float32", "float16", "bfloat16"),
                       help="dtype the frozen model is stored and computed in (the vectors always train in float32); "
                            "auto: bfloat16 where the hardware runs it natively, float16 on older GPUs, else float32")
    train.add_argument("--compile", action="store_true",
                       help="run the UNet's training passes through torch.compile: minutes of compiling before the "
                            "first step; on a CPU SD1.5's steps came out slower, so leave it off there "
                            "(bench/step.py --runs default compiled times it)")
    train.add_argument("--format", choices=EMBEDDING_FORMATS, default=None, help="default from --out's suffix")
    train.add_argument("--overwrite", action="store_true", help="replace existing output files")
    train.set_defaults(run=cmd_train)

    info = commands.add_parser("info", help="describe an embedding file: its encoders, vectors and metadata")
    info.add_argument("file")
    info.add_argument("--token", default=None, help="pick one placeholder in a file that holds several")
    info.add_argument("--model", default=None,
                      help="a local diffusers model folder: read the vectors against its vocabulary (their norms "
                           "beside its median token's, the nearest words) and say whether the embedding fits it")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=cmd_info)

    convert = commands.add_parser("convert", help="rewrite an embedding in another format")
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--format", choices=EMBEDDING_FORMATS, default=None, help="default from the suffix")
    convert.add_argument("--token", default=None, help="pick one placeholder, or rename the word")
    convert.add_argument("--overwrite", action="store_true")
    convert.set_defaults(run=cmd_convert)

    evaluate = commands.add_parser(
        "evaluate", help="the paper's reconstruction score: CLIP image similarity of pictures made with the word to "
                         "the concept's pictures, beside the init word's")
    evaluate.add_argument("--clip-vision", required=True,
                          help="a local CLIP vision folder (transformers), e.g. a saved openai/clip-vit-large-patch14")
    evaluate.add_argument("--concept", required=True, help="the folder of the concept's own pictures")
    evaluate.add_argument("--generated", required=True, help="a folder of pictures made with the word")
    evaluate.add_argument("--init-generated", required=True,
                          help="a folder of pictures made with the init word instead (the same prompts and seeds)")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.set_defaults(run=cmd_evaluate)

    demo = commands.add_parser("demo", help="train a word offline: on the concept world when built (or --world), else on a small random model")
    demo.add_argument("--out", default="demo_output", help="folder for the demo's files (default demo_output)")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default chosen for the demo)")
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier demo's files")
    demo.add_argument("--world", action="store_true",
                      help="use the concept world: a small model trained here on procedural pictures (a one-off "
                           "build of up to 45 min on a laptop CPU, then cached), which shows what a word learned")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
