"""ComfyUI's loaded MODEL, CLIP and VAE as the frozen model the trainer optimises a pseudo-word against.

Nothing is copied or reloaded: prompts go through the CLIP's own text encoders (with the word's vectors inserted
as ComfyUI inserts ``embedding:`` files), the UNet is called as ComfyUI's sampler calls it, and the VAE encodes
the pictures; ``comfy.model_management`` moves each part to its device as for any other node, so ``--lowvram``,
``--novram`` and ``--cpu`` apply. Two things in ComfyUI stand in the way of gradients and are worked around for
the duration of a training only (``training_session``): weights loaded under ``torch.inference_mode()`` are
inference tensors, which autograd refuses to save, and ComfyUI's CLIP layers add their residuals in place into
a tensor a LayerNorm saved for its backward pass.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import comfy.ldm.modules.attention
import comfy.model_management
import comfy.model_sampling
import torch

from ..textual_inversion_core.embedding import ENCODER_WIDTHS, EmbeddingError
from ..textual_inversion_core.interfaces import Conditioning, FrozenModel
from ..textual_inversion_core.precision import HALF_DTYPES, native_compute_dtype
from .pseudo_words import clip_family, clip_tokenizers, tokenizer_with_word

FAMILY_NAMES = {"sd1": "SD1.x", "sd2": "SD2.x", "sdxl": "SDXL"}
# Memory a training step's forward and backward pass needs, in multiples of ComfyUI's inference estimate.
TRAINING_ACTIVATION_FACTOR = 3


class ComfyPromptEncoder:
    """The CLIP's text encoders, honouring its settings (CLIP Set Last Layer, LoRA patches)."""

    def __init__(self, clip):
        # A clone of our own: encode() swaps its tokenizer, which must never be the caller's.
        self._clip = clip.clone()
        self._tokenizer = clip.tokenizer
        self._tokenizers = clip_tokenizers(clip.tokenizer)
        self.encoder_widths = {name: ENCODER_WIDTHS[name] for name in self._tokenizers}

    def word_vectors(self, text: str) -> dict[str, torch.Tensor]:
        result = {}
        for name, tokenizer in self._tokenizers.items():
            ids = tokenizer.tokenizer(text)["input_ids"][tokenizer.tokens_start:]
            if tokenizer.tokenizer_adds_end_token:
                ids = ids[:-1]
            table = text_encoder(self._clip, name).transformer.get_input_embeddings().weight
            rows = table[torch.tensor(ids, dtype=torch.long, device=table.device)]
            result[name] = rows.detach().to(device="cpu", dtype=torch.float32).clone()
        return result

    def encode(self, prompts: Sequence[str], token: str, vectors: dict[str, torch.Tensor]) -> Conditioning:
        self._clip.tokenizer = tokenizer_with_word(self._tokenizer, token, vectors)
        contexts, pooled = [], []
        for prompt in prompts:
            # Prompts are literal here: a caption's parentheses are text, not ComfyUI's emphasis syntax.
            tokens = self._clip.tokenize(prompt, disable_weights=True)
            context, pooled_output = self._clip.encode_from_tokens(tokens, return_pooled=True)
            contexts.append(context)
            pooled.append(pooled_output)
        return Conditioning(
            context=torch.cat(repeat_to_common_length(contexts)),
            pooled=None if pooled[0] is None else torch.cat(pooled),
        )


def text_encoder(clip, name: str) -> torch.nn.Module:
    """The SDClipModel for encoder ``name`` (clip_l, clip_h, clip_g) in a CLIP's cond_stage_model."""
    return getattr(clip.cond_stage_model, name)


def repeat_to_common_length(contexts: list[torch.Tensor]) -> list[torch.Tensor]:
    """Long prompts encode to several 77-token chunks; like ComfyUI's sampler, repeat each context along the
    token axis to the least common multiple so a batch can be stacked."""
    lengths = {c.shape[1] for c in contexts}
    if len(lengths) == 1:
        return contexts
    common = math.lcm(*lengths)
    return [c.repeat(1, common // c.shape[1], 1) for c in contexts]


class ComfyDenoiser:
    """The MODEL's diffusion network in DDPM terms: scaled noisy latents and integer timesteps in, the raw
    ε or v prediction out (ComfyUI's k-diffusion wrapper is bypassed; its input scaling is exactly DDPM's)."""

    def __init__(self, model):
        self._patcher = model
        base = model.model
        sampling = base.model_sampling
        if not isinstance(sampling, comfy.model_sampling.ModelSamplingDiscrete) or isinstance(
            sampling, comfy.model_sampling.EDM
        ) or not isinstance(sampling, comfy.model_sampling.EPS):
            raise EmbeddingError(
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
                raise EmbeddingError("This model needs a pooled text embedding (SDXL); the CLIP gave none.")
            # SDXL's size conditioning: the training pictures, uncropped, at their own size.
            height, width = (side * 8 for side in noisy_latents.shape[-2:])
            extra["y"] = base.encode_adm(
                pooled_output=cond.pooled.to(device), width=width, height=height, device=device
            ).to(device, dtype)
        with self._half_weights.swapped_in() if self._half_weights else contextlib.nullcontext():
            prediction = base.diffusion_model(
                noisy_latents.to(device, dtype),
                timesteps.to(device).float(),
                context=cond.context.to(device, dtype),
                transformer_options={"optimized_attention_override": _training_attention},
                **extra,
            )
        return prediction.float()


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


class ComfyLatentEncoder:
    def __init__(self, vae, model):
        self._vae = vae
        self._model = model

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        images = ((pixels.float() + 1) / 2).clamp(0, 1).movedim(1, -1)  # ComfyUI IMAGE layout: [B, H, W, C]
        latents = self._vae.encode(images.cpu())
        return self._model.model.process_latent_in(latents).to(self._model.load_device, torch.float32)


def frozen_model(model, clip, vae) -> FrozenModel:
    """The trainer's view of ComfyUI's MODEL/CLIP/VAE; raises EmbeddingError if they cannot be trained on."""
    family = clip_family(clip)
    if family is None:
        raise EmbeddingError(
            "Train Embedding needs the CLIP of a Stable Diffusion 1.x, 2.x or SDXL checkpoint; this CLIP has "
            f"the text encoders {', '.join(sorted(clip_tokenizers(clip.tokenizer))) or 'none of CLIP-L/H/G'}."
        )
    context_dim = model.model.model_config.unet_config.get("context_dim")
    clip_width = sum(ENCODER_WIDTHS[name] for name in clip_tokenizers(clip.tokenizer))
    if context_dim != clip_width:
        raise EmbeddingError(
            f"The MODEL expects {context_dim}-wide text conditioning but the CLIP is {FAMILY_NAMES[family]} "
            f"({clip_width} wide); connect the MODEL and CLIP of the same checkpoint."
        )
    denoiser = ComfyDenoiser(model)
    return FrozenModel(
        prompt_encoder=ComfyPromptEncoder(clip),
        denoiser=denoiser,
        latent_encoder=ComfyLatentEncoder(vae, model),
        family=family,
        device=denoiser.device,
        autocast_dtype=compute_dtype(model),
    )


@contextlib.contextmanager
def training_session(model, clip) -> Iterator[None]:
    """Let gradients flow through ComfyUI's UNet and CLIP while the block runs, and tidy up after.

    Nodes run under ``torch.inference_mode()``; inside this block it is off and gradients are on. The models
    are loaded through ComfyUI's model management, their inference-tensor weights are swapped for ordinary
    tensors with the same values (one tensor at a time, so no second copy of the model exists), and each of the
    CLIP's LayerNorms saves a copy of its input, so the layers' in-place residual additions cannot invalidate
    what backward needs. Those hooks are removed on exit, whatever happens.
    """
    with torch.inference_mode(False), torch.enable_grad():
        comfy.model_management.load_models_gpu([model, clip.patcher])
        for module in (model.model, clip.cond_stage_model):
            make_weights_autograd_safe(module)
        hooks = [
            m.register_forward_pre_hook(_copy_first_input)
            for m in clip.cond_stage_model.modules()
            if isinstance(m, torch.nn.LayerNorm)
        ]
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()
            comfy.model_management.soft_empty_cache()


class HalfPrecisionWeights:
    """Copies of a module's linear and convolution weights in a half-precision ``dtype``, swapped in by reference
    for a block and out again, so that outside it ComfyUI sees its own tensors (not rounded copies). Norm layers
    keep theirs: they meet float32 inputs outside autocast."""

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype):
        self._dtype = dtype
        self._slots = [
            [m, name, None, None]
            for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd))
            for name, tensor in m._parameters.items() if tensor is not None and tensor.is_floating_point()
        ]

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        for slot in self._slots:
            module, name, original, _ = slot
            current = module._parameters[name]
            if current is not original:  # first use, or ComfyUI replaced the weight (a patch): copy it again
                with torch.no_grad():
                    slot[2:] = current, torch.nn.Parameter(current.to(self._dtype), requires_grad=False)
            module._parameters[name] = slot[3]
        try:
            yield
        finally:
            for module, name, original, _ in self._slots:
                module._parameters[name] = original


def make_weights_autograd_safe(module: torch.nn.Module) -> None:
    """Replace inference-tensor weights by ordinary tensors with the same values, one tensor at a time.

    (Assigning ``.data`` is not enough: the tensor object would stay without the version counter autograd
    needs.)"""
    with torch.no_grad():
        for m in module.modules():
            for name, tensor in list(m._parameters.items()):
                if tensor is not None and tensor.is_inference():
                    m._parameters[name] = torch.nn.Parameter(tensor.clone(), requires_grad=False)
            for name, tensor in list(m._buffers.items()):
                if tensor is not None and tensor.is_inference():
                    m._buffers[name] = tensor.clone()


def _copy_first_input(module, args):
    return (args[0].clone(), *args[1:])
