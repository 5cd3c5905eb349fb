"""SD2.x (v-prediction) and SDXL through the ComfyUI host, on small ComfyUI-built models (see family_check.py).

SD1.x is covered end to end by the server tests; these run the same host code on the other families' model
classes, where SD2 predicts velocity and SDXL has two text encoders, a pooled embedding and size conditioning.
"""

from pathlib import Path

import pytest

from comfy_server import run_check_script

pytestmark = pytest.mark.comfyui


def run_family_check(family: str, work: Path) -> dict:
    return run_check_script("family_check.py", family, work)


def test_sd2_v_prediction_word_trains_and_applies(tmp_path):
    # Given a ComfyUI SD2.x v-prediction model (CLIP-H), when a word is trained for two steps and applied,
    report = run_family_check("sd2-v", tmp_path)
    # then the host recognises the family and trains against velocity targets,
    assert report["clip_family"] == "sd2" and report["prediction_type"] == "v_prediction"
    assert report["moved"]["clip_h"] > 0
    # and the applied word encodes exactly as ComfyUI's embedding:<file>, leaving the CLIP itself untouched.
    assert report["applied_equals_native"] and report["applied_differs_from_plain"]
    assert report["original_unchanged"]


def test_sdxl_word_trains_both_encoders_and_applies(tmp_path):
    # Given a ComfyUI SDXL model (CLIP-L and CLIP-G, pooled and size conditioning), when a word is trained,
    report = run_family_check("sdxl", tmp_path)
    # then both encoders' vectors learn,
    assert report["clip_family"] == "sdxl" and report["prediction_type"] == "epsilon"
    assert report["moved"]["clip_l"] > 0 and report["moved"]["clip_g"] > 0
    # and applying it gives both encoders their own vectors, as ComfyUI's embedding:<file> does (pooled too).
    assert report["pooled_present"] and report["applied_equals_native"] and report["applied_differs_from_plain"]
    assert report["original_unchanged"]
