"""Hugging Face diffusers' own example trainer, ``examples/textual_inversion/textual_inversion.py``, run as its
README tells users to run it, on a local diffusers model folder and a folder of pictures.

Why: the quality benchmark compares the project's embeddings with the ones people actually get from the
reference trainer. A re-implementation (``example_step.py`` times one step of one) can drift from the original in
ways nobody notices, so here the script runs *unmodified*, through ``accelerate launch``, with the README's
settings (``--train_batch_size=1 --gradient_accumulation_steps=4 --learning_rate=5.0e-04 --scale_lr
--lr_scheduler=constant --lr_warmup_steps=0``, 3000 steps). Only what our setting forces is changed: the model's
resolution (64 px, not 512), no ``--push_to_hub`` (offline), a seed, and ``--save_steps`` so the embedding can be
read along the way. Everything else, including the script's own defaults (``--repeats=100``,
``--checkpointing_steps=500``, ``--report_to=tensorboard``), stays as users get it.

``--scale_lr`` multiplies the rate by accumulation x batch x processes, so the AdamW rate the script really uses
is 5e-4 * 4 * 1 * 1 = 2e-3. One "step" of ``--max_train_steps`` and ``--save_steps`` is one optimizer update, i.e.
four pictures.

The script itself is not shipped with diffusers: neither the wheel nor the source distribution on PyPI contains
``examples/``. Give its path (``script=`` / env ``DIFFUSERS_TI_EXAMPLE``) or put it in the cache folder that
``example_script()`` names; never commit it here.

Requirements beyond the project's: ``accelerate`` (``pip install accelerate``) and ``torchvision`` (the script
imports ``torchvision.transforms``). PyPI's Linux torchvision wheels are built against CUDA torch; installed next
to a CPU-only torch they break ``import torchvision`` for every program in the environment. So when torchvision
is not installed, a matching wheel is put in a private folder of the cache (``--no-deps --target``) that only the
example's process sees, and the launcher below lets torchvision import even though its compiled ops cannot load
(the script uses none of them; it only flips PIL images).

This file is also that launcher: ``accelerate launch`` starts ``python diffusers_example.py SCRIPT ARGS...``,
which runs SCRIPT as ``__main__`` with ARGS.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.metadata
import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

SCRIPT_ENV = "DIFFUSERS_TI_EXAMPLE"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "textual-inversion-world"
SCRIPT_PATH_IN_REPO = "examples/textual_inversion/textual_inversion.py"

# The README's command (examples/textual_inversion/README.md, "Training"), minus what is per run.
README_ARGS = (
    "--train_batch_size=1",
    "--gradient_accumulation_steps=4",
    "--learning_rate=5.0e-04",
    "--scale_lr",
    "--lr_scheduler=constant",
    "--lr_warmup_steps=0",
)
README_STEPS = 3000
EFFECTIVE_LEARNING_RATE = 5.0e-04 * 4  # what --scale_lr makes of it with batch 1, 4 accumulations, 1 process

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
STEP_FILE = re.compile(r"learned_embeds-steps-(\d+)\.safetensors$")
FINAL_FILE = "learned_embeds.safetensors"


class ExampleError(RuntimeError):
    """The example could not be set up or did not finish; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class ExampleRun:
    seconds: float  # wall time of the whole subprocess: start-up and model loading included
    embeddings: dict[int, Path]  # optimizer step -> learned_embeds file saved after it
    log: Path
    command: tuple[str, ...]
    # Seconds from the subprocess's start to each file's last write: differences between consecutive entries
    # are the time per save_every steps without start-up.
    saved_at: dict[int, float]


def diffusers_version() -> str:
    try:
        return importlib.metadata.version("diffusers")
    except importlib.metadata.PackageNotFoundError as err:
        raise ExampleError("diffusers is not installed; pip install diffusers.") from err


def example_script(script: str | os.PathLike | None = None) -> Path:
    """The example script: ``script``, else ``$DIFFUSERS_TI_EXAMPLE``, else the copy in the cache folder."""
    version = diffusers_version()
    cached = CACHE / f"diffusers-example-{version}" / "textual_inversion.py"
    chosen = script or os.environ.get(SCRIPT_ENV) or cached
    path = Path(chosen).expanduser()
    if path.is_file():
        return path
    raise ExampleError(
        f"diffusers' example trainer was not found at {path}. It is not part of the diffusers package (neither "
        f"the wheel nor the PyPI source archive holds examples/), so fetch {SCRIPT_PATH_IN_REPO} from the "
        f"diffusers repository at the tag of the installed version, e.g.\n"
        f"  mkdir -p {cached.parent} && curl -L -o {cached} "
        f"https://raw.githubusercontent.com/huggingface/diffusers/v{version}/{SCRIPT_PATH_IN_REPO}\n"
        f"or point {SCRIPT_ENV} (or script=) at a copy. Use it unmodified."
    )


def _torchvision_version_for_torch() -> str:
    torch_version = importlib.metadata.version("torch").split("+")[0]
    major, minor = (int(part) for part in torch_version.split(".")[:2])
    if major != 2:
        raise ExampleError(f"No known torchvision release for torch {torch_version}; pip install a matching one.")
    # Since torch 2.0 / torchvision 0.15 the two have been released in lockstep.
    return f"0.{minor + 15}.*"


def private_torchvision() -> Path | None:
    """A folder to put on the example's PYTHONPATH for torchvision, or None when the environment has one."""
    if importlib.util.find_spec("torchvision") is not None:
        return None
    wanted = _torchvision_version_for_torch()
    folder = CACHE / f"torchvision-{wanted.rstrip('.*')}-for-torch-{importlib.metadata.version('torch')}"
    if (folder / "torchvision" / "__init__.py").is_file():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(partial),
               f"torchvision=={wanted}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ExampleError(
            f"diffusers' example imports torchvision, which is not installed, and installing it privately failed:\n"
            f"  {' '.join(command)}\n{done.stderr.strip()[-2000:]}\n"
            f"Install torchvision matching torch {importlib.metadata.version('torch')} (pip install "
            f"'torchvision=={wanted}') and run again."
        )
    partial.rename(folder)
    return folder


def check_requirements() -> None:
    """Fail early, naming the package, rather than after the subprocess has loaded the model."""
    missing = [name for name in ("accelerate", "safetensors", "PIL", "packaging", "tqdm")
               if importlib.util.find_spec(name) is None]
    if missing:
        names = " ".join("pillow" if name == "PIL" else name for name in missing)
        raise ExampleError(f"diffusers' example trainer needs {names}: pip install {names}")


def _stage_pictures(images: Path, folder: Path) -> None:
    # The example opens every file in --train_data_dir as a picture, so caption files (.txt) beside the
    # pictures, as this project's concept folders have them, would crash it.
    pictures = sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not pictures:
        raise ExampleError(f"{images} holds no pictures ({', '.join(IMAGE_SUFFIXES)}).")
    folder.mkdir(parents=True)
    for picture in pictures:
        shutil.copy2(picture, folder / picture.name)


def example_command(script: Path, model: Path, data: Path, token: str, init_word: str, prop: str, out_dir: Path,
                    resolution: int, steps: int, save_every: int, seed: int, extra_args: Sequence[str]) -> list[str]:
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        # Given explicitly so that no accelerate config file on the machine changes the run.
        "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(Path(__file__).resolve()), str(script),
        f"--pretrained_model_name_or_path={model}",
        f"--train_data_dir={data}",
        f"--learnable_property={prop}",
        f"--placeholder_token={token}",
        f"--initializer_token={init_word}",
        f"--resolution={resolution}",
        *README_ARGS,
        f"--max_train_steps={steps}",
        f"--save_steps={save_every}",
        f"--seed={seed}",
        f"--output_dir={out_dir}",
        *extra_args,
    ]


def _failure(log: Path) -> str:
    text = log.read_text(encoding="utf-8", errors="replace")
    # accelerate launch re-raises the script's failure as a CalledProcessError that repeats the whole command
    # line; the script's own traceback before it is what says what went wrong.
    launcher = text.rfind("Traceback (most recent call last):")
    if launcher > 0 and "CalledProcessError" in text[launcher:]:
        text = text[:launcher]
    return text.rstrip()[-3000:]


def run_example(
    script: str | os.PathLike | None,
    model: Path,
    images: Path,
    token: str,
    init_word: str,
    prop: str,
    out_dir: Path,
    resolution: int = 64,
    steps: int = README_STEPS,
    save_every: int = 50,
    seed: int = 0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> ExampleRun:
    """Train ``token`` with diffusers' example on the diffusers folder ``model`` and the pictures in ``images``.

    ``script`` may be None (then ``$DIFFUSERS_TI_EXAMPLE`` or the cache copy). ``init_word`` must be a single
    token of the model's tokenizer and ``token`` must not be one (the script refuses both). ``prop`` is
    ``object`` or ``style``. ``out_dir`` must be new or empty. ``env`` adds variables for the subprocess (e.g.
    OMP_NUM_THREADS). Raises ExampleError with the log's tail when the script fails.
    """
    script = example_script(script)
    check_requirements()
    if prop not in ("object", "style"):
        raise ExampleError(f"prop must be 'object' or 'style', not {prop!r}.")
    if save_every < 1 or steps < 1:
        raise ExampleError("steps and save_every must be at least 1 (save_every > steps saves only the final file).")
    model, images, out_dir = Path(model).resolve(), Path(images).resolve(), Path(out_dir).resolve()
    if not (model / "model_index.json").is_file():
        raise ExampleError(f"{model} is not a diffusers model folder (no model_index.json).")
    if out_dir.exists() and any(out_dir.iterdir()):
        # Old learned_embeds files would be taken for this run's.
        raise ExampleError(f"{out_dir} is not empty; give a new folder for the example's output.")
    data = out_dir / "train_data"
    _stage_pictures(images, data)
    trained = out_dir / "example-output"
    log = out_dir / "example.log"

    child_env = dict(os.environ)
    child_env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    extra_path = private_torchvision()
    if extra_path is not None:
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), child_env.get("PYTHONPATH")]))
    child_env.update(env or {})

    command = example_command(script, model, data, token, init_word, prop, trained, resolution, steps, save_every,
                              seed, extra_args)
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(" ".join(command) + "\n\n")
        handle.flush()
        started_wall = time.time()
        started = time.perf_counter()
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=child_env)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise ExampleError(f"diffusers' example trainer exited with {done.returncode}; log {log}:\n{_failure(log)}")

    embeddings: dict[int, Path] = {}
    for path in trained.glob("learned_embeds-steps-*.safetensors"):
        if match := STEP_FILE.search(path.name):
            embeddings[int(match.group(1))] = path
    final = trained / FINAL_FILE
    if not final.is_file():
        raise ExampleError(f"diffusers' example finished but wrote no {final}; see {log}.")
    embeddings[steps] = final  # when save_every divides steps the two files hold the same vectors
    embeddings = dict(sorted(embeddings.items()))
    saved_at = {step: path.stat().st_mtime - started_wall for step, path in embeddings.items()}
    return ExampleRun(seconds, embeddings, log, tuple(command), saved_at)


def _define_missing_torchvision_ops() -> None:
    """Let ``import torchvision`` succeed when its compiled ops cannot load (PyPI's CUDA-built wheel beside a
    CPU-only torch): torchvision registers fake kernels for ``nms`` and ``qnms`` without checking that its ops
    exist, and fails on import. Declaring the two schemas is enough; nothing the example runs calls them."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    import torch

    for library in glob.glob(os.path.join(spec.submodule_search_locations[0], "_C*.so")):
        try:
            torch.ops.load_library(library)
            return
        except OSError:
            pass
    torch.library.define("torchvision::nms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    torch.library.define("torchvision::qnms", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def _launch(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: diffusers_example.py EXAMPLE_SCRIPT [ARGS...]  (started by run_example)")
    script = argv[0]
    _define_missing_torchvision_ops()
    sys.argv = [script, *argv[1:]]
    # The script's folder in place of this one on sys.path, as when Python runs it directly: bench/'s modules
    # (step, report, measure...) must not shadow anything the script or its libraries import.
    sys.path[0] = str(Path(script).resolve().parent)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    _launch(sys.argv[1:])
