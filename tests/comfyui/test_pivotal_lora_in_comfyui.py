"""A pivotal LoRA trained through the ComfyUI host applies in ComfyUI as training computed it: through the Train
Pivotal LoRA node's MODEL, ComfyUI's own LoRA loader, and its embedding loader for the bundled word
(see pivotal_lora_check.py)."""

import pytest

from comfy_server import run_check_script

pytestmark = pytest.mark.comfyui


def test_the_pivotal_lora_applies_in_comfyui_as_training_computed_it():
    report = run_check_script("pivotal_lora_check.py")
    # Given a word and then a LoRA trained through the ComfyUI host on a small SD1 model,
    assert report["adapted_layers"] > 0 and report["adapter_changes_the_output"] > 1e-3
    # then the model's weights are untouched and the adapter acts no more once training is over,
    assert report["base_weights_untouched"] and report["hooks_gone_after_training"]
    # the node's MODEL and ComfyUI's own LoRA loader on the written file patch every adapted layer and compute
    # what training computed,
    assert report["patched_layers"] == report["adapted_layers"]
    tolerance = 1e-4 * max(1.0, report["output_scale"])
    assert report["node_model_vs_training"] < tolerance
    assert report["comfy_lora_loader_vs_training"] < tolerance
    # and ComfyUI's embedding loader reads the bundled word as trained (fixed through the LoRA stage).
    assert report["bundled_word_vs_trained"] == 0 and report["word_unchanged_by_lora_stage"]
    # A LoRA on the text encoder's attention too is applied by the node's CLIP as training computed it. ComfyUI
    # keeps the CLIP in float16 on the CPU and patches the weights (W + update, rounded to float16) where training
    # added the update to each output: a few float16 roundings through 12 layers (up to 2.2e-3 of the output's
    # scale seen), against an adapter that changes the output by more than its whole scale.
    assert report["text_layers_adapted"] > 0 and report["text_adapter_changes_the_output"] > 0.5
    assert report["node_clip_vs_training"] < 1e-2 * max(1.0, report["text_output_scale"])
