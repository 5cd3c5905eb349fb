"""bench/sd15_model.py: the benchmark's random-weight model has the released SD1.5 architecture."""

import importlib.util
from pathlib import Path

import torch


def build_sd15_pipeline():
    path = Path(__file__).resolve().parents[1] / "bench" / "sd15_model.py"
    spec = importlib.util.spec_from_file_location("bench_sd15_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_sd15_pipeline()


def test_full_size_sd15_has_the_released_architecture():
    # When the SD1.5-size model is built on the meta device (shapes only, no memory)
    with torch.device("meta"):
        pipeline = build_sd15_pipeline()
    # Then its UNet and VAE have exactly the parameter counts of the released SD1.5
    assert sum(p.numel() for p in pipeline.unet.parameters()) == 859_520_964
    assert sum(p.numel() for p in pipeline.vae.parameters()) == 83_653_863
    assert pipeline.text_encoder.config.num_hidden_layers == 12
    assert pipeline.text_encoder.get_input_embeddings().weight.shape[1] == 768
