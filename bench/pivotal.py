"""Pivotal tuning on the concept world: does a LoRA trained around a learned word draw the concept better than a
LoRA alone, and does the word still compose?

For each held-out concept of the world (``--concepts`` of them, or ``--only``), five of the world's pictures are
trained on three ways, at the same total steps and seed, with this project's trainer at its defaults otherwise:

- ``word``: textual inversion alone, ``--word-steps`` + ``--lora-steps`` steps;
- ``lora``: a LoRA alone on a plain prompt (the init word, fixed, where the word would be: "a photo of a
  object"), for the same total steps;
- ``word+lora``: the word for ``--word-steps``, then the LoRA around it (the word fixed) for ``--lora-steps``.

Each is judged as ``bench/quality.py`` judges a word (the paper's reconstruction and editability, 16 pictures per
prompt, the same seeds, the world's judge), with its LoRA acting in the UNet while its pictures are sampled, beside
the init word alone (``init``). The claim under test: word+lora beats lora on reconstruction and keeps at least
90 % of the word's editability.

    python bench/pivotal.py [--seed N] [--word-steps N] [--lora-steps N] [--lora-rank R] [--lora-lr LR]
                            [--concepts N] [--only a,b] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import CONCEPT_PICTURES, RESOLUTION, figures, open_world, present, say  # noqa: E402

from textual_inversion_core.data import load_concept_folder  # noqa: E402
from textual_inversion_core.demo.world.exam import model_answers, sit, word_exam, write_concept_folder  # noqa: E402
from textual_inversion_core.lora import LowRankAdapter, model_layers  # noqa: E402
from textual_inversion_core.training import TrainingConfig, train_embedding  # noqa: E402

WAYS = ("word", "lora", "word+lora")
MEASURES = ("reconstruction", "recognised", "edited", "editability", "seconds")


def way_config(way: str, token: str, concept, args) -> TrainingConfig:
    total = args.word_steps + args.lora_steps
    word_steps, lora_steps = {"word": (total, 0), "lora": (0, total), "word+lora": (args.word_steps, args.lora_steps)}[way]
    lora = {"lora_rank": args.lora_rank, **({"lora_learning_rate": args.lora_lr} if args.lora_lr else {})}
    return TrainingConfig(token=token, init_text=concept.init_word, template=concept.template, steps=word_steps,
                          lora_steps=lora_steps, seed=args.seed, **lora)


def acting(model, lora):
    """The LoRA in the pipeline's UNet while the block runs (nothing for a word alone)."""
    if lora is None:
        return contextlib.nullcontext()
    frozen = model.frozen_model()
    return LowRankAdapter.restored(model_layers(frozen), lora.weights, frozen.device).attached()


def benchmark(args) -> dict:
    model_path, world, judge, model, start_word = open_world(args.seed)
    report = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "world_seed": args.seed,
              "model": str(model_path), "word_steps": args.word_steps, "lora_steps": args.lora_steps,
              "lora_rank": args.lora_rank, "lora_learning_rate": args.lora_lr or TrainingConfig.lora_learning_rate,
              "concepts": {}}
    work = Path(tempfile.mkdtemp(prefix="pivotal-"))
    chosen = world.concepts()[: args.concepts]
    if args.only:
        chosen = [c for c in world.concepts() if c.name in args.only.split(",")]
    for concept in chosen:
        token = f"<{concept.name}>"
        folder = work / concept.name
        shutil.rmtree(folder, ignore_errors=True)
        references = write_concept_folder(world, concept, folder, CONCEPT_PICTURES)
        pictures = load_concept_folder(folder, RESOLUTION)
        exam = word_exam(world, concept, token)
        entry = {"kind": concept.kind,
                 "init": sit(word_exam(world, concept, concept.init_word), model_answers(model, start_word),
                             references, judge).as_dict()}
        for way in WAYS:
            say(f"{concept.name}: {way} ...")
            started = time.perf_counter()
            result = train_embedding(model.frozen_model(), pictures, way_config(way, token, concept, args))
            seconds = time.perf_counter() - started
            with acting(model, result.lora):
                scores = sit(exam, model_answers(model, result.embedding), references, judge).as_dict()
            entry[way] = {**scores, "seconds": seconds}
        report["concepts"][concept.name] = entry
        say(f"{concept.name}: " + "; ".join(f"{k} {figures(v)}" for k, v in entry.items() if isinstance(v, dict)))
    report["average"] = {
        who: {m: sum(c[who][m] for c in report["concepts"].values()) / len(report["concepts"])
              for m in MEASURES if all(m in c[who] for c in report["concepts"].values())}
        for who in ("init", *WAYS)} if report["concepts"] else {}
    average = report["average"]
    if average:
        report["claims"] = {
            "word+lora reconstruction over lora's": average["word+lora"]["reconstruction"] - average["lora"]["reconstruction"],
            "word+lora editability as a share of the word's":
                average["word+lora"]["editability"] / average["word"]["editability"] if average["word"]["editability"] else None,
        }
    return report


def print_table(report: dict) -> None:
    print(f"concept world seed {report['world_seed']}, CPU capability {report['cpu_capability']}; "
          f"{report['word_steps']} word steps + {report['lora_steps']} LoRA steps (rank {report['lora_rank']}, "
          f"lr {report['lora_learning_rate']:g}); every way {report['word_steps'] + report['lora_steps']} steps")
    print(f"{'concept':<16}{'who':<11}{'recon':>7}{'recog':>7}{'edited':>8}{'edit+keep':>10}{'sec':>7}")
    for name, entry in list(report["concepts"].items()) + [("average", report["average"])]:
        for who in ("init", *WAYS):
            r = entry[who]
            seconds = f"{r['seconds']:.0f}" if "seconds" in r else ""
            print(f"{name:<16}{who:<11}{r['reconstruction']:>7.3f}{r['recognised']:>7.2f}{r['edited']:>8.2f}"
                  f"{r['editability']:>10.2f}{seconds:>7}")
    for claim, value in report.get("claims", {}).items():
        print(f"{claim}: {'-' if value is None else f'{value:+.3f}' if 'over' in claim else f'{value:.0%}'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="which world (its held-out shapes and style)")
    parser.add_argument("--word-steps", type=int, default=1000, help="the word's steps before the LoRA's")
    parser.add_argument("--lora-steps", type=int, default=250, help="the LoRA's steps after the word's")
    parser.add_argument("--lora-rank", type=int, default=4)
    parser.add_argument("--lora-lr", type=float, default=None, help="the LoRA's learning rate (default: the trainer's)")
    parser.add_argument("--concepts", type=int, default=3, help="how many of the held-out concepts")
    parser.add_argument("--only", help="comma-separated concept names")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    present(benchmark(args), args.json, print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
