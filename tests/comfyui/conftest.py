"""Fixtures for the tests against a real ComfyUI (``COMFYUI_PATH``, ``COMFYUI_PYTHON``; skipped without them).

One server serves the whole session, on the CPU, with a small random SD1.x checkpoint generated for the session
and three concept pictures in its input folder. The example training workflow runs once (``trained_word``);
the tests that need a learned word share its result.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from comfy_server import ComfyServer, installed_comfyui
from examples import CHECKPOINT, CONCEPT_FOLDER, example_prompt, write_concept_pictures
from sampling import Graph
from web_page import launch_chromium
from workflow_format import node_ids_by_name, node_of

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def checkpoint_file(tmp_path_factory) -> Path:
    """A ~300 MB random-weight checkpoint that ComfyUI detects as SD1.x, made once per session."""
    comfyui_path, python = installed_comfyui()
    path = tmp_path_factory.mktemp("checkpoint") / CHECKPOINT
    subprocess.run([python, str(HERE / "make_checkpoint.py"), str(comfyui_path), str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory, checkpoint_file) -> ComfyServer:
    comfyui_path, python = installed_comfyui()
    instance = ComfyServer(comfyui_path, python, tmp_path_factory.mktemp("comfyui"))
    try:
        (instance.checkpoints / CHECKPOINT).symlink_to(checkpoint_file)
        write_concept_pictures(instance.input / CONCEPT_FOLDER)
        instance.wait_ready()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def nodes(server) -> dict[str, str]:
    """This extension's node ids by display name, for tests that should not depend on how the ids are spelled."""
    return node_ids_by_name(server.get("/object_info"), "textual inversion")


@pytest.fixture(scope="session")
def plain_latent_before_training(server):
    """What the untouched CLIP makes of 'a photo of <my-cat>', sampled before any training ran in the server."""
    graph = Graph(CHECKPOINT)
    saved = graph.sample(graph.clip, "a photo of <my-cat>")
    return graph.run(server)[saved]


@pytest.fixture(scope="session")
def trained_word(server, plain_latent_before_training):
    """The example training workflow, run once: 3 steps with a preview at step 2. Returns its /history entry
    and the prompt id."""
    prompt = example_prompt("train_embedding")
    train = node_of(prompt, "TextualInversionTrainEmbedding")["inputs"]
    train.update(steps=3, preview_every=2)
    prompt_id = server.queue(prompt)
    entry = server.wait(prompt_id)
    assert entry["status"]["status_str"] == "success", server.log_tail()
    return prompt, prompt_id, entry


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium for the tests of the frontend (skips them without Chromium or playwright)."""
    playwright, instance = launch_chromium()
    yield instance
    instance.close()
    playwright.stop()
