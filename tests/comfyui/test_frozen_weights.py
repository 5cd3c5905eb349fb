"""However the MODEL and CLIP were loaded, training never computes a gradient for their weights
(see frozen_weights_check.py)."""

import json
import subprocess
from pathlib import Path

import pytest

from comfy_server import REPOSITORY, installed_comfyui

pytestmark = pytest.mark.comfyui

HERE = Path(__file__).resolve().parent


def test_weights_that_require_grad_are_frozen_for_the_run_and_given_back_as_they_were():
    comfyui_path, python = installed_comfyui()
    finished = subprocess.run([python, str(HERE / "frozen_weights_check.py"), str(comfyui_path), str(REPOSITORY)],
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-6000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    # Given a ComfyUI MODEL and CLIP whose every weight requires grad, when a word trains through the host,
    assert report["steps"] == 3 and report["weights"] > 0
    # then no weight is in autograd during any step, none holds a gradient afterwards,
    assert report["weights_in_autograd_during_steps"] == [0, 0, 0]
    assert report["weights_with_a_gradient"] == 0
    # and the caller's flags are back once training is over.
    assert report["weights_requiring_grad_after"] == report["weights"]
