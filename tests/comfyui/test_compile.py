"""Train Embedding's ``compile``: the UNet's training passes through torch.compile in ComfyUI's own Python, the
same word as without it, and the MODEL left as the samplers know it (see compile_check.py)."""

import pytest

from comfy_server import run_check_script

pytestmark = pytest.mark.comfyui


def test_a_compiled_run_learns_the_plain_runs_word_and_leaves_the_model_as_it_was():
    report = run_check_script("compile_check.py")
    plain, compiled = report["plain"], report["compiled"]
    # Given the same small SD1.x MODEL trained on with and without compile, the plain run compiles nothing,
    assert plain["graphs"] == 0
    # the compiled run goes through compiled code, ComfyUI's UNet in one graph,
    assert compiled["graphs"] >= 1 and compiled["graph_breaks"] == 0
    # its losses are the plain run's within the rounding of the dtype it computes in (Inductor fuses and reorders;
    # bfloat16 keeps 8 bits of mantissa, float32 24),
    rounding = 1e-4 if report["compute_dtype"] == "torch.float32" else 1e-2
    assert compiled["losses"] == pytest.approx(plain["losses"], rel=rounding)
    # and the MODEL's own network is the one it was, not a compiled wrapper.
    assert report["model_network_unchanged"]
