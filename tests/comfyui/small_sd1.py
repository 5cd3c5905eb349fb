"""A small SD1.x MODEL, CLIP and VAE built in-process from ComfyUI's own classes, as its loaders would return
them, for the check scripts. Import it once ComfyUI is on ``sys.path`` and its arguments are set."""

from __future__ import annotations

import comfy.model_base
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.supported_models
import comfy.supported_models_base
import comfy.taesd.taesd
import torch

from make_checkpoint import reset_weights


# The checks' word: three steps at a rate high enough for the vectors to move visibly.
THREE_STEPS = dict(token="<thing>", init_text="thing", steps=3, learning_rate=0.05, seed=0)


def noise_pictures(data, count: int = 2) -> list:
    """``count`` seeded noise pictures of 64 px as the core's ``ConceptImage`` (``data``: the extension's
    ``textual_inversion_core.data``, as the check imported it)."""
    return [data.ConceptImage(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i)), "", str(i))
            for i in range(count)]


def build_sd1():
    torch.manual_seed(0)
    unet_config = dict(
        image_size=32, in_channels=4, out_channels=4, model_channels=64, num_res_blocks=[1], channel_mult=[1],
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
