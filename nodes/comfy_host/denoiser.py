"""The MODEL's diffusion network as a ``Denoiser``."""

from __future__ import annotations

import contextlib

import comfy.ldm.modules.attention
import comfy.model_management
import comfy.model_sampling
import comfy.utils
import torch

from ...textual_inversion_core.compilation import compiled
from ...textual_inversion_core.errors import ModelError
from ...textual_inversion_core.families import LATENT_FACTOR
from ...textual_inversion_core.interfaces import Conditioning
from ...textual_inversion_core.precision import HALF_DTYPES, native_compute_dtype
from .half_weights import HalfPrecisionWeights

# Memory a training step's forward and backward pass needs, in multiples of ComfyUI's inference estimate.
TRAINING_ACTIVATION_FACTOR = 3


class ComfyDenoiser:
    """The MODEL's diffusion network in DDPM terms: scaled noisy latents and integer timesteps in, the raw
    ε or v prediction out (ComfyUI's k-diffusion wrapper is bypassed; its input scaling is exactly DDPM's)."""

    def __init__(self, model, compile: bool = False):
        self._patcher = model
        base = model.model
        # Through the patcher: a ModelSamplingDiscrete node (v-prediction on a misdetected model) patches it there,
        # and the patch reaches base.model_sampling only once ComfyUI has loaded the model.
        sampling = model.get_model_object("model_sampling")
        if not isinstance(sampling, comfy.model_sampling.ModelSamplingDiscrete) or isinstance(
            sampling, comfy.model_sampling.EDM
        ) or not isinstance(sampling, comfy.model_sampling.EPS):
            raise ModelError(
                f"This MODEL ({type(base).__name__}) is not a Stable Diffusion 1.x/2.x/SDXL model with a discrete "
                "noise schedule; textual inversion can be trained on SD1.x, SD2.x and SDXL checkpoints."
            )
        self.prediction_type = "v_prediction" if isinstance(sampling, comfy.model_sampling.V_PREDICTION) else "epsilon"
        sigmas = sampling.sigmas.detach().to(device="cpu", dtype=torch.float64)
        self.alphas_cumprod = (1.0 / (1.0 + sigmas**2)).to(torch.float32)
        # On the CPU ComfyUI keeps the UNet in float32. Autocast would cast every weight to the half precision
        # training computes in at every step (a third of a 256-px SD1.5 step on a 2-core CPU: 2.7 s against
        # 1.85 s) and keep most casts for the backward pass anyway; half-precision copies made once cost 0.5 GB
        # more at the peak at 512 px. They stand in for ComfyUI's weights only during this denoiser's forward
        # passes (backward uses what autograd saved), so previews and other nodes sample with the originals.
        dtype = compute_dtype(model)
        self._half_weights = (
            HalfPrecisionWeights(base.diffusion_model, dtype)
            if model.load_device.type == "cpu" and dtype is not None and base.manual_cast_dtype is None
            and base.get_dtype() == torch.float32 else None
        )
        # Compiled for this denoiser's training passes only: the MODEL's own network, which the samplers use, is
        # left as it is.
        self._network = compiled(base.diffusion_model) if compile else base.diffusion_model

    @property
    def device(self) -> torch.device:
        return self._patcher.load_device

    def __call__(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        # Cheap when the model is already loaded; reloads it if ComfyUI made room for the CLIP (low VRAM). Backward
        # keeps every activation of the forward pass, so ask for room for several inference passes, as the
        # sampler asks for one: ComfyUI then offloads weights instead of running out of memory.
        activations = self._patcher.memory_required(list(noisy_latents.shape))
        comfy.model_management.load_models_gpu(
            [self._patcher], memory_required=TRAINING_ACTIVATION_FACTOR * activations, minimum_memory_required=activations
        )
        base = self._patcher.model
        dtype = base.manual_cast_dtype or base.get_dtype()
        device = self.device
        extra = {}
        if base.adm_channels:
            if cond.pooled is None:
                raise ModelError("This model needs a pooled text embedding (SDXL); the CLIP gave none.")
            # SDXL's size conditioning: the training pictures, uncropped, at their own size.
            height, width = (side * LATENT_FACTOR for side in noisy_latents.shape[-2:])
            extra["y"] = base.encode_adm(
                pooled_output=cond.pooled.to(device), width=width, height=height, device=device
            ).to(device, dtype)
        with self._half_weights.swapped_in() if self._half_weights else contextlib.nullcontext():
            prediction = self._network(
                noisy_latents.to(device, dtype),
                timesteps.to(device).float(),
                context=cond.context.to(device, dtype),
                transformer_options={"optimized_attention_override": _training_attention},
                **extra,
            )
        return prediction.float()

    def adaptable_layers(self) -> dict[str, torch.nn.Linear]:
        # ComfyUI's UNet is the original LDM one; named the diffusers way, the adapter's file is the same from
        # both hosts, and ComfyUI's LoRA loader maps the names back.
        base = self._patcher.model
        modules = dict(base.diffusion_model.named_modules())
        layers = {}
        for key, ldm_key in comfy.utils.unet_to_diffusers(base.model_config.unet_config).items():
            if key.endswith(".weight") and ".transformer_blocks." in key:
                module = modules.get(ldm_key[:-len(".weight")])
                if isinstance(module, torch.nn.Linear):
                    layers[key[:-len(".weight")]] = module
        return layers


def compute_dtype(model) -> torch.dtype | None:
    """The dtype to train in: the one ComfyUI computes the MODEL in when that is half precision, else the fastest
    one its device runs natively (bfloat16 on CPUs with AVX512-BF16, where ComfyUI keeps float32)."""
    base = model.model
    dtype = base.manual_cast_dtype or base.get_dtype()
    if dtype not in HALF_DTYPES:
        dtype = native_compute_dtype(model.load_device)
    return dtype if dtype in HALF_DTYPES else None


def _training_attention(attention, *args, **kwargs):
    """PyTorch's SDPA, whatever attention ComfyUI samples with: it has a backward pass on every device (sage
    attention has none), and on the CPU it beats ComfyUI's sub-quadratic attention, which trades speed for memory."""
    return comfy.ldm.modules.attention.attention_pytorch(*args, **kwargs)
