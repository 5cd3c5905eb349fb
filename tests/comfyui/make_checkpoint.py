"""Write a small random-weight checkpoint that ComfyUI's loader detects as Stable Diffusion 1.x.

Run with ComfyUI's Python: ``python make_checkpoint.py COMFYUI_PATH OUT.safetensors [SEED]``.

ComfyUI recognises SD1.x by the UNet's ``model_channels`` (320) and cross-attention width (768), so a UNet with
one resolution level and one block per level passes while staying small; the SD1 CLIP-L text encoder is always
built at full size; a TAESD autoencoder stands in for the large VAE. The modules are ComfyUI's own classes, so
the state-dict keys are exactly the ones its checkpoint loader expects.
"""

from __future__ import annotations

import sys

import torch


def reset_weights(module: torch.nn.Module) -> None:
    # ComfyUI's layer classes skip weight initialisation (they expect a checkpoint); give them torch's defaults.
    kinds = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.Embedding)
    for m in module.modules():
        for kind in kinds:
            if isinstance(m, kind):
                kind.reset_parameters(m)
                break


def build_state_dict(seed: int) -> dict[str, torch.Tensor]:
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management looks for a GPU
    import comfy.ops
    import comfy.sd1_clip
    import comfy.taesd.taesd
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    torch.manual_seed(seed)
    unet = UNetModel(
        image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=1,
        channel_mult=(1,), num_heads=8, use_spatial_transformer=True, transformer_depth=[1],
        transformer_depth_middle=1, transformer_depth_output=[1, 1], context_dim=768,
        use_linear_in_transformer=False, legacy=False, operations=comfy.ops.disable_weight_init,
    )
    clip = comfy.sd1_clip.SDClipModel(device="cpu", dtype=torch.float32)
    vae = comfy.taesd.taesd.TAESD()
    for module in (unet, clip, vae):
        reset_weights(module)

    sd = {}
    sd.update({f"model.diffusion_model.{k}": v for k, v in unet.state_dict().items()})
    sd.update({f"cond_stage_model.{k}": v for k, v in clip.state_dict().items() if k.startswith("transformer.text_model.")})
    sd.update({f"first_stage_model.{k}": v for k, v in vae.state_dict().items()})
    return {k: v.detach().to(torch.float16).contiguous() for k, v in sd.items()}


def main() -> None:
    comfyui_path, out = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    sys.path.insert(0, comfyui_path)
    import safetensors.torch

    safetensors.torch.save_file(build_state_dict(seed), out)


if __name__ == "__main__":
    main()
