"""A complete training run on this machine, offline.

With the concept world (``--world``, or whenever it is already built) the demo trains a word for a concept the
world's model can draw but has no word for, and writes a picture grid: the concept's pictures, the init word, the
learned word and two edits, so a newcomer sees what was learned. Without it, it builds a small
Stable-Diffusion-1-style model with random weights in seconds and trains on a few drawn pictures: that proves the
pipeline end to end (data, latents, loss, vectors, file, plot) in a few minutes, but cannot show image quality.
Both go through the same job the command line's ``train`` runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..train_job import OutputExists, TrainJob, run_train_job
from ..training import TrainingConfig
from .pictures import draw_concept_pictures
from .tiny_models import build_random_model

DEMO_RESOLUTION = 64
DEMO_STEPS = 300
DEMO_TOKEN = "<demo-ball>"
# The world's words need far fewer steps than a real model's; this keeps the cached-world demo within minutes.
WORLD_DEMO_STEPS = 400


def run_demo(out: Path, steps: int | None = None, overwrite: bool = False, world: bool = False) -> int:
    from .world.model import Recipe, is_built, world_model_path

    if world or is_built(world_model_path(Recipe())):
        return run_world_demo(out, steps, overwrite)
    started = time.perf_counter()
    print("Demo: a small SD1-style model with RANDOM weights, built here. It proves the training pipeline end "
          "to end; it cannot show image quality (`demo --world` can, after a one-off build).", file=sys.stderr)
    model_dir, images_dir = out / "random-sd1-model", out / "concept"
    if not (model_dir / "model_index.json").exists():
        build_random_model(model_dir, family="sd1", seed=0)
    if not images_dir.is_dir():
        draw_concept_pictures(images_dir)
    embedding_path = out / "demo-ball.safetensors"
    run_train_job(TrainJob(
        model=model_dir, images=images_dir, out=embedding_path, resolution=DEMO_RESOLUTION, device="cpu",
        overwrite=overwrite, config=TrainingConfig(token=DEMO_TOKEN, init_text="ball", steps=steps or DEMO_STEPS),
    ))
    print(f"Demo finished in {time.perf_counter() - started:.0f} s. Inspect the result with:\n"
          f"  python -m textual_inversion_core info {embedding_path}", file=sys.stderr)
    return 0


def run_world_demo(out: Path, steps: int | None = None, overwrite: bool = False) -> int:
    from ..embedding import Embedding
    from ..hosts.diffusers import load_diffusers_model
    from .world.exam import model_answers, word_exam, write_concept_folder
    from ..picture_grid import picture_grid
    from .world.model import build_world_model
    from .world.scenes import make_world

    started = time.perf_counter()
    model_dir = build_world_model()
    world = make_world()
    concept = world.concepts()[0]
    token = f"<{concept.name}>"
    grid_path = out / f"{concept.name}-grid.png"
    if grid_path.exists() and not overwrite:
        raise OutputExists(f"would overwrite {grid_path}; choose another --out or pass --overwrite.")
    print(f"Demo: the concept world's model draws {', '.join(world.named_shapes)} by name; it has seen "
          f"{concept.colour} {concept.name}s too, but only ever captioned 'object'. Learning {token} from 5 "
          "pictures, starting from 'object'.", file=sys.stderr)
    images_dir = out / f"{concept.name}-pictures"
    references = write_concept_folder(world, concept, images_dir)
    embedding_path = out / f"{concept.name}.safetensors"
    result = run_train_job(TrainJob(
        model=model_dir, images=images_dir, out=embedding_path, resolution=DEMO_RESOLUTION, device="cpu",
        overwrite=overwrite, config=TrainingConfig(token=token, init_text=concept.init_word,
                                                   template=concept.template, steps=steps or WORLD_DEMO_STEPS),
    ))

    model = load_diffusers_model(model_dir, device="cpu")
    learned = result.embedding
    start = Embedding(token, model.prompt_encoder.word_vectors(concept.init_word))
    exam = word_exam(world, concept, token)
    prompts = [exam.reconstruction_prompt, exam.edits[0].prompt, exam.edits[1].prompt]
    answers = model_answers(model, learned, count=6)(prompts)
    rows = [("the concept's pictures", references), (f"{prompts[0]} (init: {concept.init_word})",
                                                      model_answers(model, start, count=6)(prompts[:1])[prompts[0]])]
    rows += [(prompt, answers[prompt]) for prompt in prompts]
    picture_grid(rows).save(grid_path)
    print(f"Demo finished in {time.perf_counter() - started:.0f} s: {grid_path} shows the concept, the init word, "
          f"the learned word and two edits; the word is {embedding_path}.", file=sys.stderr)
    return 0
