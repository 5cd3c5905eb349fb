"""Train a word on a small ComfyUI SD1.x model on the CPU, with and without half-precision weight copies; prints a
JSON report.

Run as ``python precision_check.py COMFYUI_PATH REPOSITORY`` in ComfyUI's Python. ComfyUI keeps the UNet in float32
on the CPU; where the CPU computes bfloat16 natively the host trains in it, with bfloat16 copies of the UNet's
weights standing in for ComfyUI's during its own forward passes only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from make_checkpoint import reset_weights

comfyui_path, repository = sys.argv[1], Path(sys.argv[2])
# The loader lives with the benchmark, which imports the extension the same way.
sys.path[:0] = [comfyui_path, str(repository / "bench")]
from extension_import import extension_module  # noqa: E402

import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True
import comfy.model_base  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.sd1_clip  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.supported_models_base  # noqa: E402
import comfy.taesd.taesd  # noqa: E402

comfy_model = extension_module(repository, "nodes.comfy_model")
trainer = extension_module(repository, "textual_inversion_core.trainer")
data = extension_module(repository, "textual_inversion_core.data")
precision = extension_module(repository, "textual_inversion_core.precision")


def build():
    torch.manual_seed(0)
    unet_config = dict(
        image_size=32, in_channels=4, out_channels=4, model_channels=64, num_res_blocks=1, channel_mult=[1],
        use_spatial_transformer=True, transformer_depth=[1], transformer_depth_middle=1,
        transformer_depth_output=[1, 1], context_dim=768, use_linear_in_transformer=False, legacy=False,
    )
    model_config = comfy.supported_models.SD15(unet_config)
    model_config.set_inference_dtype(torch.float32, None)
    base = comfy.model_base.BaseModel(model_config, device="cpu")
    reset_weights(base)
    model = comfy.model_patcher.ModelPatcher(base, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    target = comfy.supported_models_base.ClipTarget(comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel)
    clip = comfy.sd.CLIP(target=target, embedding_directory=[])
    reset_weights(clip.cond_stage_model)
    taesd = comfy.taesd.taesd.TAESD()
    reset_weights(taesd)
    return model, clip, comfy.sd.VAE(sd=taesd.state_dict())


def main() -> None:
    pictures = [data.ConceptImage(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i)), "", str(i))
                for i in range(2)]
    config = trainer.TrainingConfig(token="<thing>", init_text="thing", steps=3, learning_rate=0.05, seed=0)
    with torch.inference_mode():  # as ComfyUI runs every node
        model, clip, vae = build()
        unet = model.model.diffusion_model
        runs = {}
        for copies in (True, False):
            frozen = comfy_model.frozen_model(model, clip, vae)
            if not copies:
                frozen.denoiser._half_weights = None  # autocast casts ComfyUI's float32 weights at every step
            with comfy_model.training_session(model, clip):
                weights_before = {name: p for name, p in unet.named_parameters()}
                result = trainer.train_embedding(frozen, pictures, config)
                weights_after = {name: p for name, p in unet.named_parameters()}
            runs[copies] = result.losses
    report = {
        "native_bf16": precision.native_compute_dtype(torch.device("cpu")) == torch.bfloat16,
        "autocast_dtype": str(frozen.autocast_dtype),
        "weights_are_comfyuis_after_training": weights_before.keys() == weights_after.keys() and all(
            weights_after[name] is tensor and tensor.dtype == torch.float32 for name, tensor in weights_before.items()),
        "losses_with_copies": runs[True],
        "losses_with_autocast_casts": runs[False],
    }
    print(json.dumps(report))


main()
