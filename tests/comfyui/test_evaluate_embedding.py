"""Evaluate Embedding scores pictures with ComfyUI's own CLIP vision model, as the command line does with the same
weights (see evaluate_check.py)."""

import pytest

from comfy_server import run_check_script

pytestmark = pytest.mark.comfyui


def test_the_node_scores_with_comfyuis_clip_vision_as_the_command_line_does_with_the_same_weights():
    report = run_check_script("evaluate_check.py")
    # Given a CLIP vision model ComfyUI built and loaded itself, when pictures like the concept's and unlike it
    # are scored,
    assert report["missing_weights"] == []
    # then the like ones score higher, the report says both figures,
    assert report["similarity"] > report["init_similarity"]
    assert f"{report['similarity']:.4f}" in report["report"] and "with the init word" in report["report"]
    # and the figures are the command line's for the same weights (ComfyUI rounds the pixels to 8 bits first).
    assert report["similarity"] == pytest.approx(report["command_line_similarity"], abs=5e-3)
    assert report["init_similarity"] == pytest.approx(report["command_line_init_similarity"], abs=5e-3)
