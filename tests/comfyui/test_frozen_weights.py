"""However the MODEL and CLIP were loaded, training never computes a gradient for their weights, and the UNet's
convolutions go through the core's frozen-weight routing for the run alone (see frozen_weights_check.py)."""

import pytest

from comfy_server import run_check_script

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def report():
    # Given a ComfyUI MODEL and CLIP whose every weight requires grad, when a word trains 3 steps through the host
    return run_check_script("frozen_weights_check.py")


def test_weights_that_require_grad_are_frozen_for_the_run_and_given_back_as_they_were(report):
    assert report["steps"] == 3 and report["weights"] > 0
    # then no weight is in autograd during any step, none holds a gradient afterwards,
    assert report["weights_in_autograd_during_steps"] == [0, 0, 0]
    assert report["weights_with_a_gradient"] == 0
    # and the caller's flags are back once training is over.
    assert report["weights_requiring_grad_after"] == report["weights"]


def test_the_unets_convolutions_go_through_the_cores_routing_for_the_run_and_not_after(report):
    # then every convolution of the UNet computes through the core's routing during each step, and none does once
    # training is over.
    assert report["convolutions"] > 0
    assert report["convolutions_routed_during_steps"] == [report["convolutions"]] * 3
    assert report["convolutions_routed_after"] == 0
