"""Quality benchmark on the concept world: does a learned word make the model draw the concept, and does it still
obey the rest of the prompt?

For each held-out concept of the world (two shapes, a patterned object, a style; ``--seed`` draws another world),
five of the world's pictures of it are given to two trainers: this project's, at its defaults, and diffusers' own
example ``examples/textual_inversion/textual_inversion.py``, unmodified, at its README's settings
(``diffusers_example.py``). Each word is then judged the paper's way (``textual_inversion_core.evaluation``):
16 pictures per prompt, the same seeds for every word, a CFG sampler, read by the world's judge:

- reconstruction: the judge-feature similarity of "a photo of a S*" to the concept's pictures, and the share the
  judge reads as the concept (``recognised``);
- editability: over prompts that change one thing ("a photo of a blue S*", "... on a checked background", "a
  pixelated image of a S*"), the share showing the change and still showing the concept, also edit by edit. An
  edit the judge cannot read on the world's own drawings of it (``exam.unreadable_edits``) is left out of every
  exam and named in the report.

Reference points on the same model, judge and seeds: the init word alone (``init``), a named concept of the same
kind in the model's own words (``ceiling``, the best a word can do here) and the world's own drawings of the
prompts (``truth``). Both trainers are also scored along the way (``--curve``), and the time to quality is the
first curve point with 90 % of the way from the init word's reconstruction to the trainer's final one.

    python bench/quality.py [--seed N] [--steps N] [--example-steps N] [--concepts N] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from diffusers_example import example_script, run_example  # noqa: E402

from textual_inversion_core.data import load_concept_folder  # noqa: E402
from textual_inversion_core.demo.world.exam import (  # noqa: E402
    ceiling_concept, concept_pictures, model_answers, named_exam, read_back, sit, sit_truth, unreadable_edits,
    without_edits, word_exam, write_concept_folder,
)
from textual_inversion_core.demo.world.model import Recipe, build_world_model, load_judge  # noqa: E402
from textual_inversion_core.demo.world.scenes import make_world  # noqa: E402
from textual_inversion_core.embedding import Embedding  # noqa: E402
from textual_inversion_core.formats import load_embedding  # noqa: E402
from textual_inversion_core.hosts.diffusers import load_diffusers_model  # noqa: E402
from textual_inversion_core.training import DEFAULT_STEPS, TrainingCallbacks, TrainingConfig, train_embedding  # noqa: E402

RESOLUTION = 64
CONCEPT_PICTURES = 5
EXAMPLE_STEPS = 3000  # the example README's --max_train_steps
WHO = ("init", "project", "example", "ceiling", "truth")
EDIT_FIGURES = ("edited", "kept", "edited_and_kept")


# A trainer's word along the way: step -> (seconds since the trainer started, embedding).
Curve = dict[int, tuple[float, Embedding]]


class _Snapshots(TrainingCallbacks):
    def __init__(self, steps: set[int], started: float):
        self.steps, self.started, self.points = steps, started, {}

    def on_checkpoint(self, embedding: Embedding, step: int) -> None:
        if step in self.steps:
            self.points[step] = (time.perf_counter() - self.started, embedding)


def train_project(model_path: Path, images: Path, token: str, concept, steps: int, curve: list[int],
                  seed: int, **settings) -> Curve:
    """This project's trainer at its defaults (or with other ``TrainingConfig`` ``settings``), from loading the
    model on (as ``train`` does)."""
    started = time.perf_counter()
    model = load_diffusers_model(model_path, device="cpu", dtype="float32")
    pictures = load_concept_folder(images, RESOLUTION)
    points = [s for s in curve if s < steps]
    config = TrainingConfig(token=token, init_text=concept.init_word, template=concept.template, steps=steps,
                            seed=seed, checkpoint_every=_gcd(points) if points else 0, **settings)
    snapshots = _Snapshots(set(points), started)
    result = train_embedding(model.frozen_model(), pictures, config, snapshots)
    snapshots.points[result.steps_done] = (time.perf_counter() - started, result.embedding)
    return snapshots.points


def train_example(model_path: Path, images: Path, token: str, concept, steps: int, curve: list[int], out: Path,
                  seed: int) -> Curve:
    points = [s for s in curve if s < steps] + [steps]
    run = run_example(example_script(), model_path, images, token, concept.init_word, concept.kind, out,
                      resolution=RESOLUTION, steps=steps, save_every=_gcd(points), seed=seed)
    return {s: (run.saved_at[s], load_embedding(run.embeddings[s], token=token, family="sd1"))
                  for s in points if s in run.embeddings}


def project_settings(args) -> dict:
    """The project's settings the command line changed from its defaults (for a sweep of them)."""
    given = {"learning_rate": args.lr, "num_vectors": args.vectors, "batch_size": args.batch,
             "norm_control": args.norm_control, "min_snr_gamma": args.min_snr_gamma}
    return {name: value for name, value in given.items() if value is not None}


def _gcd(values: list[int]) -> int:
    return math.gcd(*values)


def time_to_quality(curve: dict[int, dict], init: float) -> dict | None:
    """The first curve point with 90 % of the way from the init word's reconstruction to the final one."""
    final = curve[max(curve)]["reconstruction"]
    goal = init + 0.9 * (final - init)
    for step in sorted(curve):
        if curve[step]["reconstruction"] >= goal:
            return {"step": step, "seconds": curve[step]["seconds"]}
    return None


def open_world(seed: int, recipe: Recipe | None = None, cache: Path | None = None):
    """The world of ``seed``, built or cached: its model's folder, the world, its judge, the model loaded (float32,
    on the CPU) and a word that says nothing ("object"), for prompts without a learned word."""
    model_path = build_world_model(recipe or Recipe(world_seed=seed), cache)
    model = load_diffusers_model(model_path, device="cpu", dtype="float32")
    start_word = Embedding("<none>", model.prompt_encoder.word_vectors("object"))
    return model_path, make_world(seed), load_judge(model_path), model, start_word


def benchmark(args, recipe: Recipe | None = None, cache: Path | None = None) -> dict:
    model_path, world, judge, model, start_word = open_world(args.seed, recipe, cache)
    report = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "world_seed": args.seed,
              "model": str(model_path), "project_steps": args.steps, "example_steps": args.example_steps,
              "project_settings": project_settings(args),
              "named_prompts_read_back": read_back(model, start_word, judge, world), "concepts": {}}
    say(f"named prompts read back by the judge: {figures(report['named_prompts_read_back'])}")
    work = Path(args.out or tempfile.mkdtemp(prefix="quality-"))
    chosen = world.concepts()[: args.concepts]
    if args.only:
        chosen = [c for c in world.concepts() if c.name in args.only.split(",")]
    for concept in chosen:
        token = f"<{concept.name}>"
        folder = work / concept.name / "pictures"
        shutil.rmtree(folder, ignore_errors=True)
        references = write_concept_folder(world, concept, folder, CONCEPT_PICTURES)
        whole_exam = word_exam(world, concept, token)
        unreadable = unreadable_edits(sit_truth(world, concept, whole_exam, references, judge))
        exam = without_edits(whole_exam, unreadable)
        entry = {
            "kind": concept.kind,
            "unreadable_edits": {kind: dataclasses.asdict(edit) for kind, edit in unreadable.items()},
            "init": sit(without_edits(word_exam(world, concept, concept.init_word), unreadable),
                        model_answers(model, start_word), references, judge).as_dict(),
            "ceiling": sit(without_edits(named_exam(world, concept), unreadable), model_answers(model, start_word),
                           concept_pictures(world, ceiling_concept(world, concept), CONCEPT_PICTURES), judge).as_dict(),
            "truth": sit_truth(world, concept, exam, references, judge).as_dict(),
        }
        trainers = {"project": lambda: train_project(model_path, folder, token, concept, args.steps, args.curve,
                                                     args.seed, **project_settings(args))}
        if args.example_steps:
            trainers["example"] = lambda: train_example(model_path, folder, token, concept, args.example_steps,
                                                        args.curve, work / concept.name / "example", args.seed)
        for name, train in trainers.items():
            say(f"{concept.name}: training with {name} ...")
            curve = train()
            scored = {step: {**sit(exam, model_answers(model, word), references, judge).as_dict(), "seconds": seconds}
                      for step, (seconds, word) in sorted(curve.items())}
            final_step = max(scored)
            entry[name] = {**scored[final_step], "steps": final_step, "curve": scored,
                           "time_to_quality": time_to_quality(scored, entry["init"]["reconstruction"]),
                           "best_step": {measure: max(scored, key=lambda step: scored[step][measure])
                                         for measure in ("reconstruction", "editability")}}
        report["concepts"][concept.name] = entry
        say(f"{concept.name}: " + "; ".join(f"{k} {figures(v)}" for k, v in entry.items() if k in WHO))
    report["average"] = _average(report["concepts"])
    return report


def read_reports(paths: list[str]) -> list[dict]:
    """Earlier ``--json`` reports, to be merged: all of one world."""
    reports = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    if len({r["world_seed"] for r in reports}) != 1:
        raise SystemExit(f"--merge takes reports of one world; these are of worlds {[r['world_seed'] for r in reports]}")
    return reports


def merge(paths: list[str]) -> dict:
    """Reports of one world's concepts run apart (``--only``), as one."""
    reports = read_reports(paths)
    merged = {**reports[0], "concepts": {k: v for r in reports for k, v in r["concepts"].items()}}
    merged["average"] = _average(merged["concepts"])
    return merged


def _average(concepts: dict) -> dict:
    average = {}
    for who in WHO:
        rows = [c[who] for c in concepts.values() if who in c]
        if rows:
            average[who] = {key: statistics.fmean([r[key] for r in rows])
                            for key in ("reconstruction", "recognised", "edited", "editability", "seconds")
                            if all(key in r for r in rows)}
            # Each kind of edit over the concepts that have it (objects change colour, styles the shape).
            kinds = dict.fromkeys(kind for r in rows for kind in r.get("by_edit", {}))
            average[who]["by_edit"] = {
                kind: {key: statistics.fmean([r["by_edit"][kind][key] for r in rows if kind in r.get("by_edit", {})])
                       for key in EDIT_FIGURES}
                for kind in kinds}
    return average


def figures(values: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
                     if not isinstance(v, dict))


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def present(report: dict, as_json: bool, print_table) -> None:
    """The report as one JSON object, or as ``print_table`` prints it."""
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


def print_table(report: dict) -> None:
    settings = ", ".join(f"{k} {v}" for k, v in report.get("project_settings", {}).items()) or "its defaults"
    print(f"concept world seed {report['world_seed']}, CPU capability {report['cpu_capability']}; "
          f"this project {report['project_steps']} steps ({settings}), diffusers' example "
          f"{report['example_steps']} steps (4 pictures each)")
    print("named prompts, share of attributes the judge reads back: " + figures(report["named_prompts_read_back"]))
    header = f"{'concept':<16}{'who':<9}{'recon':>7}{'recog':>7}{'edited':>8}{'edit+keep':>10}{'steps':>7}{'sec':>8}"
    print(header)
    rows = list(report["concepts"].items()) + [("average", report["average"])]
    for name, entry in rows:
        for who in WHO:
            if who not in entry:
                continue
            r = entry[who]
            steps = r.get("steps", "")
            seconds = f"{r['seconds']:.0f}" if "seconds" in r else ""
            print(f"{name:<16}{who:<9}{r['reconstruction']:>7.3f}{r['recognised']:>7.2f}{r['edited']:>8.2f}"
                  f"{r['editability']:>10.2f}{steps:>7}{seconds:>8}")
    print_edits(rows)
    for name, entry in report["concepts"].items():
        for who in ("project", "example"):
            if who in entry:
                curve = entry[who]["curve"]
                points = "  ".join(f"{s}: {c['reconstruction']:.3f}/{c['editability']:.2f} ({c['seconds']:.0f} s)"
                                   for s, c in curve.items())
                best = entry[who]["best_step"]
                print(f"curve {name} {who} (step: recon/edit, seconds): {points}; 90 % at "
                      f"{entry[who]['time_to_quality']}; best snapshot: step {best['reconstruction']} for "
                      f"reconstruction, step {best['editability']} for editability")


def print_edits(rows: list[tuple[str, dict]]) -> None:
    """Each edit's pictures: the share showing the change, the share still showing the concept, and both, which
    tells a word that swallows the prompt (kept, not edited) from one the prompt swallows (the other way)."""
    present = [who for who in WHO if any(who in entry for _, entry in rows)]
    kinds = {name: dict.fromkeys(kind for who in present if who in entry for kind in entry[who].get("by_edit", {}))
             for name, entry in rows}
    if not any(kinds.values()):
        return  # a report from before edits were scored one by one
    print(f"{'edit: edited / kept / both':<30}" + "".join(f"{who:>17}" for who in present))
    for name, entry in rows:
        for kind in kinds[name]:
            cells = []
            for who in present:
                edit = entry.get(who, {}).get("by_edit", {}).get(kind)
                cells.append("/".join(f"{edit[key]:.2f}" for key in EDIT_FIGURES) if edit else "")
            print(f"{name + ' ' + kind:<30}" + "".join(f"{cell:>17}" for cell in cells))
    for name, entry in rows:
        for kind, truth in entry.get("unreadable_edits", {}).items():
            print(f"{name + ' ' + kind:<30}not scored: the judge reads {truth['edited_and_kept']:.2f} of the world's "
                  f"own drawings of it as edited and kept")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="which world (its held-out shapes and style)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="this project's steps (its default)")
    parser.add_argument("--example-steps", type=int, default=EXAMPLE_STEPS,
                        help="the example's steps (its README: 3000); 0 leaves the example out")
    parser.add_argument("--curve", type=lambda s: [int(v) for v in s.split(",")], default=[50, 100, 200, 500, 1000],
                        help="steps at which both trainers' words are scored")
    parser.add_argument("--concepts", type=int, default=4, help="how many of the held-out concepts")
    parser.add_argument("--lr", type=float, help="this project's learning rate instead of its default")
    parser.add_argument("--vectors", type=int, help="this project's vectors per word instead of its default")
    parser.add_argument("--batch", type=int, help="this project's batch size instead of its default")
    parser.add_argument("--norm-control", help="this project's norm control instead of its default")
    parser.add_argument("--min-snr-gamma", type=float, help="this project's min-SNR weighting instead of none")
    parser.add_argument("--only", help="comma-separated concept names, e.g. to split the run over processes")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="print the table of earlier --json reports of one world taken together, and run nothing")
    parser.add_argument("--out", help="a folder for the pictures and the example's runs (default: a new temp one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    present(merge(args.merge) if args.merge else benchmark(args), args.json, print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
