"""The diffusers host and the ComfyUI host on the same weights and the same batch, in float32; prints a JSON report.

Run as ``python hosts_agree_check.py COMFYUI_PATH REPOSITORY WORK_FOLDER`` in ComfyUI's Python. For SD1 (ε) and
SD2 (v-prediction) a random-weight diffusers folder is written in WORK_FOLDER and loaded by the project's
diffusers host and by ComfyUI's own loaders; each host encodes the same pictures, and computes one batch's loss
(the same latents, noise, timesteps, prompts and starting vectors) and its gradient on the word's vectors.

The models are small where ComfyUI lets them be: a one-level 320-channel UNet (what ComfyUI needs to see SD1.x
or SD2.x), text encoders at their real widths and heads with ComfyUI's own vocabulary and narrow MLPs (ComfyUI
told so through its model options), and SD's VAE (the one ComfyUI builds for any SD VAE file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from comfyui_start import start_comfyui

comfyui_path, repository, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
# As ComfyUI started with --cpu --force-fp32 --fp32-text-enc: on the CPU it keeps text encoders in float16
# otherwise, and this comparison is of float32 with float32.
start_comfyui(comfyui_path, repository, force_fp32=True, fp32_text_enc=True)
from extension_import import extension_module  # noqa: E402
import comfy.model_management  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402
from comfy_extras.nodes_model_advanced import ModelSamplingDiscrete  # noqa: E402
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

# The project's modules: the one place that names them.
comfy_host = extension_module(repository, "nodes.comfy_host")
diffusers_host = extension_module(repository, "textual_inversion_core.hosts.diffusers")
trainer = extension_module(repository, "textual_inversion_core.training")

TOKEN = "<thing>"
PROMPTS = ["a photo of a <thing>", "a painting of <thing>, on a table by the sea"]
TIMESTEPS = [150, 700]
TEXT_MLP = 256
WEIGHTS = "diffusion_pytorch_model.safetensors"
# One resolution level, one block per level, one transformer per block, in ComfyUI's terms (its key map's).
UNET_LAYOUT = dict(num_res_blocks=[1], channel_mult=[1], transformer_depth=[1], transformer_depth_output=[1, 1],
                   transformer_depth_middle=1)
FAMILIES = {
    "sd1": dict(
        unet=dict(cross_attention_dim=768, attention_head_dim=8),  # SD1.5's 8 heads
        text=dict(hidden_size=768, num_attention_heads=12, num_hidden_layers=2, hidden_act="quick_gelu"),
        # ComfyUI's Long-CLIP support overwrites "clip_l_model_config" with "model_config", so CLIP-L's goes there.
        comfy_options={"model_config": {"num_hidden_layers": 2, "intermediate_size": TEXT_MLP}},
        prediction_type="epsilon", encoder="clip_l", pad="<|endoftext|>",
    ),
    # SD2.1's 64-channel heads (5 at 320 channels) and linear projections. Its diffusers text encoder holds
    # OpenCLIP-H's first 23 layers (ComfyUI tells CLIP-H by layer 22) and the pipelines take the last one's output,
    # where ComfyUI builds all 24 and takes the penultimate: the same layer either way. OpenCLIP pads with "!" (id 0).
    "sd2-v": dict(
        unet=dict(cross_attention_dim=1024, attention_head_dim=5, use_linear_projection=True),
        text=dict(hidden_size=1024, num_attention_heads=16, num_hidden_layers=23, hidden_act="gelu"),
        comfy_options={"clip_h_model_config": {"intermediate_size": TEXT_MLP}},
        prediction_type="v_prediction", encoder="clip_h", pad="!",
    ),
}


def write_diffusers_folder(folder: Path, settings: dict) -> None:
    """A random-weight SD folder whose tokenizer is ComfyUI's own CLIP vocabulary, so both hosts see the same ids."""
    torch.manual_seed(0)
    tokenizer = CLIPTokenizer.from_pretrained(Path(comfyui_path) / "comfy" / "sd1_tokenizer", model_max_length=77,
                                              pad_token=settings["pad"])
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), max_position_embeddings=77, intermediate_size=TEXT_MLP, **settings["text"]))
    unet = UNet2DConditionModel(
        block_out_channels=(320,), layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",), **settings["unet"])
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512), layers_per_block=2, sample_size=512)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, prediction_type=settings["prediction_type"])
    StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(folder, safe_serialization=True)


def load_in_comfyui(folder: Path, settings: dict):
    """MODEL, CLIP and VAE from the folder by ComfyUI's own loaders, as its diffusers loader (comfy.diffusers_load)
    calls them."""
    # ComfyUI's diffusers loader maps a diffusers UNet's keys to its own only for the full-size layouts it
    # knows; its own key map for this layout does the same for the small one, then its UNet loader detects it.
    unet = comfy.utils.load_torch_file(str(folder / "unet" / WEIGHTS), safe_load=True)
    model = comfy.sd.load_diffusion_model_state_dict(
        {theirs: unet.pop(ours) for ours, theirs in comfy.utils.unet_to_diffusers(UNET_LAYOUT).items() if ours in unet})
    if unet:
        raise RuntimeError(f"ComfyUI's key map left diffusers weights behind: {sorted(unet)}")
    if settings["prediction_type"] == "v_prediction":
        # ComfyUI guesses v-prediction from a trained UNet's weights, which random ones lack; a user whose model
        # is taken for ε says so with the ModelSamplingDiscrete node, as here.
        model = ModelSamplingDiscrete().patch(model, "v_prediction", False)[0]
    state = comfy.utils.load_torch_file(str(folder / "text_encoder" / "model.safetensors"), safe_load=True)
    # transformers 5 saves CLIP without its "text_model." prefix; ComfyUI reads the classic layout.
    state = {k if k.startswith(("text_model.", "text_projection")) else f"text_model.{k}": v for k, v in state.items()}
    clip = comfy.sd.load_text_encoder_state_dicts([state], model_options=settings["comfy_options"])
    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(folder / "vae" / WEIGHTS), safe_load=True))
    return model, clip, vae


def loss_and_gradient(frozen, latents, noise, start: torch.Tensor, name: str):
    vectors = {name: start.clone().requires_grad_()}
    loss = trainer.batch_loss(frozen, latents, PROMPTS, TOKEN, vectors, torch.tensor(TIMESTEPS), noise)
    loss.backward()
    return loss.item(), vectors[name].grad


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def compare(family: str) -> dict:
    settings = FAMILIES[family]
    name = settings["encoder"]
    folder = work / family
    write_diffusers_folder(folder, settings)
    generator = torch.Generator().manual_seed(1)
    pixels = torch.rand(2, 3, 32, 32, generator=generator)  # concept pictures, in [0, 1]

    ours = diffusers_host.load_diffusers_model(folder, "cpu", "float32").frozen_model()
    with torch.no_grad():
        latents = ours.latent_encoder.encode(pixels)
    noise = torch.randn(latents.shape, generator=generator)
    start = trainer.initial_vectors(ours, "cat", 2)[name]
    loss, gradient = loss_and_gradient(ours, latents, noise, start, name)

    with torch.inference_mode():  # as ComfyUI runs every node, its loaders included
        model, clip, vae = load_in_comfyui(folder, settings)
        # Before ComfyUI has loaded the model, as scripts outside a node may call it: a ModelSamplingDiscrete
        # patch is seen through the patcher already.
        unloaded_prediction_type = comfy_host.frozen_model(model, clip, vae).denoiser.prediction_type
        with comfy_host.training_session(model, clip):
            # Inside the session, as the Train Embedding node calls it.
            theirs = comfy_host.frozen_model(model, clip, vae)
            # The host trains in bfloat16 on CPUs that compute it natively; compare float32 with float32.
            theirs.autocast_dtype = theirs.denoiser._half_weights = theirs.latent_encoder._compute_dtype = None
            with torch.no_grad():
                their_latents = theirs.latent_encoder.encode(pixels)
            their_start = trainer.initial_vectors(theirs, "cat", 2)[name]
            their_loss, their_gradient = loss_and_gradient(theirs, latents, noise, start, name)
        comfy.model_management.unload_all_models()  # ComfyUI keeps them loaded for the next prompt
    return {
        "prediction_types": [ours.denoiser.prediction_type, theirs.denoiser.prediction_type],
        "prediction_type_before_loading": unloaded_prediction_type,
        "start_vectors_equal": torch.equal(start, their_start),
        "latents_relative_difference": relative(their_latents, latents),
        "losses": [loss, their_loss],
        "loss_relative_difference": abs(their_loss - loss) / abs(loss),
        "gradient_norm": float(gradient.norm()),
        "gradient_relative_difference": relative(their_gradient, gradient),
        "gradient_cosine": float(torch.cosine_similarity(their_gradient.flatten(), gradient.flatten(), 0)),
    }


print(json.dumps({family: compare(family) for family in FAMILIES}))
