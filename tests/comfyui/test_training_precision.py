"""Training through the ComfyUI host on the CPU computes in bfloat16 where the CPU runs it natively, while ComfyUI
keeps its float32 UNet (see precision_check.py)."""

import pytest

from comfy_server import run_check_script

pytestmark = pytest.mark.comfyui


def test_half_precision_copies_change_the_speed_not_the_result_nor_comfyuis_weights():
    report = run_check_script("precision_check.py")
    if not report["native_bf16"]:
        pytest.skip("this CPU has neither AVX512-BF16 nor AMX, so training stays in float32")
    # Given ComfyUI's float32 SD1.x UNet on a CPU with native bfloat16, training computes in bfloat16,
    assert report["autocast_dtype"] == "torch.bfloat16"
    # its bfloat16 weight copies give exactly the losses autocast's per-step casts give,
    assert report["losses_with_copies"] == report["losses_with_autocast_casts"]
    # and afterwards the UNet holds ComfyUI's own float32 tensors, so other nodes sample as before.
    assert report["weights_are_comfyuis_after_training"]
