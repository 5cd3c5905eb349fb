"""However the MODEL and CLIP were loaded, training never computes a gradient for their weights
(see frozen_weights_check.py)."""

import pytest

from comfy_server import run_check_script

pytestmark = pytest.mark.comfyui


def test_weights_that_require_grad_are_frozen_for_the_run_and_given_back_as_they_were():
    report = run_check_script("frozen_weights_check.py")
    # Given a ComfyUI MODEL and CLIP whose every weight requires grad, when a word trains through the host,
    assert report["steps"] == 3 and report["weights"] > 0
    # then no weight is in autograd during any step, none holds a gradient afterwards,
    assert report["weights_in_autograd_during_steps"] == [0, 0, 0]
    assert report["weights_with_a_gradient"] == 0
    # and the caller's flags are back once training is over.
    assert report["weights_requiring_grad_after"] == report["weights"]
