"""Shared fixtures: tiny random-weight diffusers models, built once per test session."""

import pytest

from textual_inversion_core.data import load_concept_folder
from textual_inversion_core.demo.pictures import draw_concept_pictures
from textual_inversion_core.demo.tiny_models import build_random_model


def _model(tmp_path_factory, family, **kwargs):
    return build_random_model(tmp_path_factory.mktemp("models") / family, family=family, seed=0, **kwargs)


@pytest.fixture(scope="session")
def sd1_model_dir(tmp_path_factory):
    """A tiny SD1.x diffusers folder (clip_l 768, epsilon prediction)."""
    return _model(tmp_path_factory, "sd1")


@pytest.fixture(scope="session")
def sd2_model_dir(tmp_path_factory):
    """A tiny SD2.x diffusers folder (clip_h 1024, epsilon prediction)."""
    return _model(tmp_path_factory, "sd2")


@pytest.fixture(scope="session")
def sd2_vpred_model_dir(tmp_path_factory):
    """A tiny SD2.x diffusers folder predicting velocity (like SD2.1 768-v)."""
    return _model(tmp_path_factory, "sd2", prediction_type="v_prediction")


@pytest.fixture(scope="session")
def sdxl_model_dir(tmp_path_factory):
    """A tiny SDXL diffusers folder (clip_l 768 + clip_g 1280, pooled text embedding, epsilon prediction)."""
    return _model(tmp_path_factory, "sdxl")


@pytest.fixture(scope="session")
def concept(tmp_path_factory):
    """Three pictures of the demo's concept at 64 px, loaded as the trainer takes them (a test module may define
    its own ``concept`` instead, e.g. with more pictures)."""
    folder = tmp_path_factory.mktemp("concept")
    draw_concept_pictures(folder, count=3, seed=0)
    return load_concept_folder(folder, resolution=64)
