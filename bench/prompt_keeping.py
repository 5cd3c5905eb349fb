"""Words that keep the prompt, on the concept world: norm control against editability, masks against background
leakage.

Norm control: for each held-out object of the world, words are trained at this project's defaults with
``norm_control`` off, ``rescale`` and ``penalty``, and scored the paper's way (``bench/quality.py``): the
reconstruction (judge-feature similarity to the concept's pictures) and the editability (the share of edited
prompts, "a blue S*", "S* on a checked background", "a pixelated image of S*", that show the edit and the concept).

Masks: each object's five pictures are all drawn on one background (striped), and a word is trained from them
with and without masks (the shape's own coverage, written as ``name.mask.png`` beside each picture, as a user
would). The word is then asked for the concept on each of the other backgrounds; the leakage is the share of those
pictures the judge reads as striped, the background the word should not have learned.

    python bench/prompt_keeping.py [--seed N] [--steps N] [--only NAMES] [--json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import CONCEPT_PICTURES, figures, open_world, present, read_reports, say, train_project  # noqa: E402

from textual_inversion_core.demo.world.exam import model_answers, sit, word_exam, write_concept_folder  # noqa: E402
from textual_inversion_core.demo.world.scenes import BACKGROUNDS  # noqa: E402
from textual_inversion_core.training import DEFAULT_STEPS  # noqa: E402
from textual_inversion_core.training.norm_control import NORM_CONTROLS  # noqa: E402

TRAINING_BACKGROUND = "striped"
SAMPLES = 16


def leakage(model, word, token: str, judge) -> dict[str, float]:
    """For the concept asked for on every background but the training one: the share of pictures read as the
    training background (leaked), and as the background asked for (obeyed)."""
    asked = [b for b in BACKGROUNDS if b != TRAINING_BACKGROUND]
    prompts = [f"a photo of a {token} on a {b} background" for b in asked]
    answers = model_answers(model, word, count=SAMPLES)(prompts)
    seen = [(b, r["background"]) for b, prompt in zip(asked, prompts) for r in judge.read(answers[prompt])]
    return {"leaked": sum(r == TRAINING_BACKGROUND for _, r in seen) / len(seen),
            "obeyed": sum(r == b for b, r in seen) / len(seen)}


def benchmark(args) -> dict:
    model_path, world, judge, model, _ = open_world(args.seed)
    work = Path(args.out or tempfile.mkdtemp(prefix="prompt-keeping-"))
    objects = [c for c in world.concepts() if c.kind == "object"]
    if args.only:
        objects = [c for c in objects if c.name in args.only.split(",")]
    report = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "world_seed": args.seed,
              "steps": args.steps, "norm_control": {}, "masks": {}}
    for concept in objects:
        if args.part in ("norm", "both"):
            report["norm_control"][concept.name] = norm_control_scores(args, model_path, model, world, judge,
                                                                       concept, work)
        if args.part in ("masks", "both"):
            report["masks"][concept.name] = mask_leakage(args, model_path, model, world, judge, concept, work)
    report["average"] = _averages(report)
    return report


def norm_control_scores(args, model_path, model, world, judge, concept, work: Path) -> dict:
    token = f"<{concept.name}>"
    folder = work / concept.name / "pictures"
    references = write_concept_folder(world, concept, folder, CONCEPT_PICTURES)
    exam = word_exam(world, concept, token)
    scores = {}
    for control in NORM_CONTROLS:
        curve = train_project(model_path, folder, token, concept, args.steps, [], args.seed, norm_control=control)
        seconds, word = curve[max(curve)]
        norms = word.metadata["norm_to_median"]["clip_l"]
        scores[control] = {**sit(exam, model_answers(model, word), references, judge).as_dict(),
                           "norm_to_median": max(norms), "seconds": seconds}
        say(f"{concept.name} norm_control {control}: {figures(scores[control])}")
    return scores


def mask_leakage(args, model_path, model, world, judge, concept, work: Path) -> dict:
    token = f"<{concept.name}>"
    found = {}
    for kind in ("unmasked", "masked"):
        folder = work / concept.name / kind
        write_concept_folder(world, concept, folder, CONCEPT_PICTURES, masks=kind == "masked",
                             background=TRAINING_BACKGROUND)
        curve = train_project(model_path, folder, token, concept, args.steps, [], args.seed)
        found[kind] = leakage(model, curve[max(curve)][1], token, judge)
        say(f"{concept.name} {kind}: {figures(found[kind])}")
    return found


def _averages(report: dict) -> dict:
    return {
        "norm_control": {control: _mean([c[control] for c in report["norm_control"].values()])
                         for control in NORM_CONTROLS} if report["norm_control"] else {},
        "masks": {kind: _mean([c[kind] for c in report["masks"].values()])
                  for kind in ("unmasked", "masked")} if report["masks"] else {},
    }


def _mean(rows: list[dict]) -> dict:
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]} if rows else {}


def merge(paths: list[str]) -> dict:
    """Reports of one world's objects run apart (``--only``), as one."""
    reports = read_reports(paths)
    merged = {**reports[0], "norm_control": {}, "masks": {}}
    for r in reports:
        merged["norm_control"].update(r["norm_control"])
        merged["masks"].update(r["masks"])
    merged["average"] = _averages(merged)
    return merged


def print_table(report: dict) -> None:
    print(f"concept world seed {report['world_seed']}, CPU capability {report['cpu_capability']}, "
          f"{report['steps']} steps at the project's defaults")
    print(f"{'concept':<16}{'norm_control':<14}{'recon':>7}{'recog':>7}{'edited':>8}{'edit+keep':>10}{'norm':>7}")
    rows = list(report["norm_control"].items()) + [("average", report["average"]["norm_control"])]
    for name, entry in rows:
        for control, r in entry.items():
            print(f"{name:<16}{control:<14}{r['reconstruction']:>7.3f}{r['recognised']:>7.2f}{r['edited']:>8.2f}"
                  f"{r['editability']:>10.2f}{r['norm_to_median']:>6.2f}x")
    print(f"pictures all on a {TRAINING_BACKGROUND} background, the word asked for on each other background:")
    print(f"{'concept':<16}{'pictures':<10}{'leaked':>8}{'obeyed':>8}")
    rows = list(report["masks"].items()) + [("average", report["average"]["masks"])]
    for name, entry in rows:
        for kind, r in entry.items():
            print(f"{name:<16}{kind:<10}{r['leaked']:>8.2f}{r['obeyed']:>8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="which world (its held-out objects)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps per word")
    parser.add_argument("--only", help="comma-separated object names, e.g. to split the run over processes")
    parser.add_argument("--part", choices=("norm", "masks", "both"), default="both", help="which measurement")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="print earlier --json reports together")
    parser.add_argument("--out", help="a folder for the pictures (default: a new temp one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    present(merge(args.merge) if args.merge else benchmark(args), args.json, print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
