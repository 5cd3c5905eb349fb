"""Opt-in torch.compile of the denoiser's training passes: the same word as without it, and a missing compiler
named before any work."""

import pytest
import torch
from torch._dynamo.utils import counters

from textual_inversion_core.compilation import check_compiler
from textual_inversion_core.errors import ConfigError
from textual_inversion_core.hosts.diffusers import load_diffusers_model
from textual_inversion_core.training import TrainingConfig, train_embedding


def test_a_compiled_denoiser_learns_the_same_word_as_the_plain_one(sd1_model_dir, concept):
    # Given the same model loaded plainly and with compile
    config = TrainingConfig(token="<ball>", init_text="toy", steps=3, learning_rate=5e-3)
    plain = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32")
    fast = load_diffusers_model(sd1_model_dir, device="cpu", dtype="float32", compile=True)
    # When each trains a word with the same seed
    expected = train_embedding(plain.frozen_model(), concept, config)
    torch._dynamo.reset()
    counters.clear()
    result = train_embedding(fast.frozen_model(), concept, config)
    # Then the compiled run went through compiled code, the UNet in one graph, and its losses and vectors are the
    # plain run's within float32 rounding (Inductor fuses and reorders sums)
    assert counters["stats"]["unique_graphs"] >= 1 and not counters["graph_break"]
    assert result.losses == pytest.approx(expected.losses, rel=1e-4)
    torch.testing.assert_close(result.embedding.vectors["clip_l"], expected.embedding.vectors["clip_l"],
                               rtol=1e-4, atol=1e-6)
    # And the UNet itself stays uncompiled, so previews at other sizes sample as before
    assert not isinstance(fast.pipeline.unet, torch._dynamo.eval_frame.OptimizedModule)


def test_compile_without_a_cpu_compiler_is_refused_naming_what_to_install(monkeypatch):
    # Given a machine whose C++ compiler cannot be found
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    # Then compiling for the CPU is refused before any work, saying what is missing and what to do
    with pytest.raises(ConfigError, match=r"C\+\+ compiler.*no-such-compiler-here.*without compile"):
        check_compiler(torch.device("cpu"))
