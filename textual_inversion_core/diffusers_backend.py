"""A local diffusers model folder (SD1, SD2, SDXL) as the frozen model the trainer optimises a word against.

Prompts are encoded exactly as diffusers' pipelines encode them, except that each occurrence of the pseudo-word
becomes ``n`` token slots whose embeddings are replaced, inside the text encoder's forward pass, by the word's
vectors. The vocabulary itself is never modified, so gradients reach only those vectors.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Sequence

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from PIL import Image

from .embedding import ENCODER_WIDTHS, FAMILY_ENCODERS, MAX_VECTORS, Embedding, EmbeddingError
from .interfaces import Conditioning, FrozenModel
from .precision import autocast_dtype_for

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# Which family a single (non-SDXL) text encoder's width means.
_FAMILY_BY_WIDTH = {ENCODER_WIDTHS["clip_l"]: "sd1", ENCODER_WIDTHS["clip_h"]: "sd2"}

# How much of each UNet weight file the model hash reads: enough to tell models apart, cheap for a 5 GB file.
_HASH_BYTES = 4 << 20

_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's MPS, then the CPU; anything else is taken as a torch device."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"Unsupported dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")


class _TextEncoder:
    """One CLIP text encoder with its tokenizer, under the name embeddings use for it (clip_l, clip_h, clip_g)."""

    def __init__(self, name: str, tokenizer, model: torch.nn.Module):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model
        self.length = tokenizer.model_max_length
        # Placeholder slots need some id in input_ids. transformers pools at the end marker's position, found
        # either as the first id equal to it or, for CLIP's legacy configs, as the highest id; an id that is
        # neither equal to nor above the end marker can never be mistaken for it.
        self.slot_id = 0 if tokenizer.eos_token_id != 0 else 1
        # Training draws its prompts from a few dozen templates: each is tokenized once, not once per step.
        self._tokenized: dict[tuple[str, str, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def tokenize(self, prompt: str, token: str, n: int) -> tuple[list[int], list[int]]:
        """Input ids for ``prompt`` padded as the pipelines pad, and for each position the row of the word's
        vectors it takes (-1 where the vocabulary's own embedding stays)."""
        ids: list[int] = []
        rows: list[int] = []
        for i, piece in enumerate(prompt.split(token)):
            if i > 0:
                ids += [self.slot_id] * n
                rows += range(n)
            piece_ids = self.token_ids(piece)
            ids += piece_ids
            rows += [-1] * len(piece_ids)
        content = self.length - 2
        ids = [self.tokenizer.bos_token_id] + ids[:content] + [self.tokenizer.eos_token_id]
        rows = [-1] + rows[:content] + [-1]
        padding = self.length - len(ids)
        return ids + [self.tokenizer.pad_token_id] * padding, rows + [-1] * padding

    def run(self, prompts: Sequence[str], token: str, vectors: torch.Tensor):
        """The encoder's output for ``prompts`` with ``vectors`` written into the word's slots."""
        tokenized = [self._tokenized_on_device(prompt, token, vectors.shape[0]) for prompt in prompts]
        ids = torch.stack([t[0] for t in tokenized])
        rows = torch.stack([t[1] for t in tokenized])
        in_slot = (rows >= 0).unsqueeze(-1)

        def inject(module, inputs, output):
            chosen = vectors.to(device=output.device, dtype=output.dtype)[rows.clamp(min=0)]
            return torch.where(in_slot, chosen, output)

        handle = self.model.get_input_embeddings().register_forward_hook(inject)
        try:
            return self.model(ids, output_hidden_states=True)
        finally:
            handle.remove()

    def _tokenized_on_device(self, prompt: str, token: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (prompt, token, n)
        if key not in self._tokenized:
            if len(self._tokenized) >= 4096:  # captions and templates are few; this only bounds a misuse
                self._tokenized.clear()
            ids, rows = self.tokenize(prompt, token, n)
            device = self.model.device
            self._tokenized[key] = (torch.tensor(ids, device=device), torch.tensor(rows, device=device))
        return self._tokenized[key]


class DiffusersPromptEncoder:
    """The pipeline's text encoders as a ``PromptEncoder``."""

    def __init__(self, encoders: list[_TextEncoder], family: str):
        self._encoders = encoders
        self._family = family
        self.encoder_widths = {e.name: ENCODER_WIDTHS[e.name] for e in encoders}

    def word_vectors(self, text: str) -> dict[str, torch.Tensor]:
        result = {}
        for encoder in self._encoders:
            table = encoder.model.get_input_embeddings().weight
            ids = torch.tensor(encoder.token_ids(text), dtype=torch.long, device=table.device)
            result[encoder.name] = table[ids].detach().to(device="cpu", dtype=torch.float32).clone()
        return result

    def _check_vectors(self, token: str, vectors: dict[str, torch.Tensor]) -> None:
        if not token:
            raise EmbeddingError("The pseudo-word to encode is empty; give the token, e.g. '<my-cat>'.")
        if set(vectors) != set(self.encoder_widths):
            raise EmbeddingError(
                f"Vectors for {', '.join(sorted(vectors))} were given, but this {self._family.upper()} model "
                f"needs {' and '.join(self.encoder_widths)}."
            )
        counts = set()
        for name, tensor in vectors.items():
            if tensor.dim() != 2 or tensor.shape[1] != self.encoder_widths[name]:
                raise EmbeddingError(
                    f"Vectors for {name} must have shape [n, {self.encoder_widths[name]}], got {tuple(tensor.shape)}."
                )
            counts.add(tensor.shape[0])
        if len(counts) != 1 or not 1 <= next(iter(counts)) <= MAX_VECTORS:
            raise EmbeddingError(
                f"Every encoder needs the same number (1 to {MAX_VECTORS}) of vectors for {token!r}, got "
                + ", ".join(f"{n}: {t.shape[0]}" for n, t in vectors.items())
                + "."
            )

    def encode(self, prompts: Sequence[str], token: str, vectors: dict[str, torch.Tensor]) -> Conditioning:
        if isinstance(prompts, str):
            prompts = [prompts]
        self._check_vectors(token, vectors)
        outputs = [encoder.run(prompts, token, vectors[encoder.name]) for encoder in self._encoders]
        if self._family != "sdxl":
            return Conditioning(context=outputs[0].last_hidden_state)
        # SDXL conditions on both encoders' penultimate layers side by side, and on clip_g's projected pooled
        # output (taken at the end marker).
        context = torch.cat([output.hidden_states[-2] for output in outputs], dim=-1)
        return Conditioning(context=context, pooled=outputs[-1].text_embeds)


class DiffusersDenoiser:
    """The pipeline's UNet as a ``Denoiser``; its predictions come back in float32 whatever the weights' dtype."""

    def __init__(self, unet: torch.nn.Module, scheduler, family: str, vae_scale_factor: int):
        self._unet = unet
        self._family = family
        self._vae_scale_factor = vae_scale_factor
        self.prediction_type = scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(
                f"The model's scheduler predicts {self.prediction_type!r}; only 'epsilon' and 'v_prediction' "
                "models can be trained."
            )
        self.alphas_cumprod = scheduler.alphas_cumprod.detach().to(device="cpu", dtype=torch.float32).clone()

    def __call__(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        device, dtype = self._unet.device, self._unet.dtype
        added_cond_kwargs = None
        if self._family == "sdxl":
            if cond.pooled is None:
                raise ValueError("An SDXL denoiser needs the pooled text embedding (Conditioning.pooled).")
            # SDXL's micro-conditioning: original size, crop corner (0, 0), target size, all in pixels.
            height, width = (side * self._vae_scale_factor for side in noisy_latents.shape[-2:])
            time_ids = torch.tensor([height, width, 0, 0, height, width], device=device, dtype=dtype)
            added_cond_kwargs = {
                "text_embeds": cond.pooled.to(device=device, dtype=dtype),
                "time_ids": time_ids.expand(noisy_latents.shape[0], -1),
            }
        prediction = self._unet(
            noisy_latents.to(device=device, dtype=dtype),
            timesteps.to(device),
            encoder_hidden_states=cond.context.to(device=device, dtype=dtype),
            added_cond_kwargs=added_cond_kwargs,
        ).sample
        return prediction.float()


class DiffusersLatentEncoder:
    """The pipeline's VAE encoder as a ``LatentEncoder`` (the distribution's mode, scaled; float32 out)."""

    def __init__(self, vae: torch.nn.Module):
        self._vae = vae

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        if self._vae.device.type == "meta":
            raise RuntimeError("The VAE was released after the latents were cached; load the model again to encode.")
        latents = self._vae.encode(pixels.to(device=self._vae.device, dtype=self._vae.dtype)).latent_dist.mode()
        shift = getattr(self._vae.config, "shift_factor", None)
        if shift is not None:
            latents = latents - shift
        return (latents * self._vae.config.scaling_factor).float()


class DiffusersModel:
    """A Stable Diffusion pipeline, frozen, on one device and dtype, as the trainer and previews use it."""

    def __init__(
        self,
        pipeline: DiffusionPipeline,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
        model_hash: str | None = None,
    ):
        self.pipeline = pipeline
        self.family = _pipeline_family(pipeline)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.model_hash = model_hash
        for module in pipeline.components.values():
            if isinstance(module, torch.nn.Module):
                if module.dtype != self.dtype:
                    module.to(dtype=self.dtype)
                module.to(device=self.device).requires_grad_(False).eval()
        # The VAE overflows in float16 unless its config says otherwise; the pipelines upcast it, and so do we.
        if self.dtype == torch.float16 and pipeline.vae.config.get("force_upcast", True):
            pipeline.vae.to(dtype=torch.float32)
        pipeline.unet.set_attn_processor(AttnProcessor2_0())
        pipeline.vae.set_attn_processor(AttnProcessor2_0())
        pipeline.set_progress_bar_config(disable=True)

        encoders = [
            _TextEncoder(name, getattr(pipeline, tokenizer), getattr(pipeline, model))
            for name, (tokenizer, model) in zip(
                FAMILY_ENCODERS[self.family],
                [("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")],
            )
        ]
        self.prompt_encoder = DiffusersPromptEncoder(encoders, self.family)
        self.denoiser = DiffusersDenoiser(pipeline.unet, pipeline.scheduler, self.family, pipeline.vae_scale_factor)
        self.latent_encoder = DiffusersLatentEncoder(pipeline.vae)

    @property
    def prediction_type(self) -> str:
        return self.denoiser.prediction_type

    def release_vae(self) -> None:
        """Free the VAE's weights: training needs them only to cache the latents. Previews and latent encoding
        are impossible afterwards."""
        self.pipeline.vae.to_empty(device="meta")

    def frozen_model(self) -> FrozenModel:
        return FrozenModel(
            prompt_encoder=self.prompt_encoder,
            denoiser=self.denoiser,
            latent_encoder=self.latent_encoder,
            family=self.family,
            device=self.device,
            autocast_dtype=autocast_dtype_for(self.dtype),
            model_hash=self.model_hash,
        )

    @torch.no_grad()
    def render_preview(
        self,
        embedding: Embedding,
        prompt: str,
        seed: int = 0,
        steps: int = 20,
        resolution: int | None = None,
        guidance_scale: float = 7.5,
    ) -> Image.Image:
        """An image for ``prompt`` in which the bare ``embedding.token`` stands for the embedding's vectors.

        ``resolution`` (square, a multiple of 8) defaults to the model's native size; the same seed gives the
        same image.
        """
        embedding.check_family(self.family)
        vectors = {name: embedding.vectors[name] for name in self.prompt_encoder.encoder_widths}
        cond = self.prompt_encoder.encode([prompt], embedding.token, vectors)
        size = resolution or self.pipeline.unet.config.sample_size * self.pipeline.vae_scale_factor
        # The negative (empty) prompt is left to the pipeline, which encodes or zeroes it as it always does.
        extra = {"pooled_prompt_embeds": cond.pooled} if self.family == "sdxl" else {}
        latents = self.pipeline(
            prompt_embeds=cond.context,
            **extra,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="latent",
        ).images
        return self._decode(latents)

    def _decode(self, latents: torch.Tensor) -> Image.Image:
        vae = self.pipeline.vae
        latents = latents.to(dtype=vae.dtype) / vae.config.scaling_factor
        shift = getattr(vae.config, "shift_factor", None)
        if shift is not None:
            latents = latents + shift
        pixels = vae.decode(latents).sample
        return self.pipeline.image_processor.postprocess(pixels.float(), output_type="pil")[0]


def _pipeline_family(pipeline: DiffusionPipeline) -> str:
    if getattr(pipeline, "text_encoder_2", None) is not None:
        return "sdxl"
    return _family_from_width(pipeline.text_encoder.config.hidden_size, "the pipeline's text encoder")


def _family_from_width(width: int, where: str) -> str:
    if width not in _FAMILY_BY_WIDTH:
        raise ValueError(
            f"{where} is {width} wide; only SD1.x (768) and SD2.x (1024) text encoders, or SDXL's pair, are supported."
        )
    return _FAMILY_BY_WIDTH[width]


def detect_family(path: str | Path) -> str:
    """``sd1``, ``sd2`` or ``sdxl`` for a diffusers folder, read from its configs without loading weights."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No model folder at {path}.")
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise ValueError(
            f"{path} is not a diffusers model folder (it has no model_index.json). Point to the folder that "
            "holds model_index.json, unet/, vae/, text_encoder/ and tokenizer/."
        )
    index = json.loads(index_file.read_text(encoding="utf-8"))
    if (index.get("text_encoder_2") or [None])[0] is not None:
        if (index.get("text_encoder") or [None])[0] is None:
            raise ValueError(f"{path} has only SDXL's second text encoder (a refiner?); it cannot learn a word.")
        return "sdxl"
    config_file = path / "text_encoder" / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{path} has no text_encoder/config.json; a Stable Diffusion folder needs its text encoder.")
    width = json.loads(config_file.read_text(encoding="utf-8"))["hidden_size"]
    return _family_from_width(width, f"The text encoder in {config_file}")


def model_hash(path: str | Path) -> str:
    """A short hash identifying a diffusers folder's UNet weights: the files' names, sizes and first megabytes."""
    unet = Path(path) / "unet"
    files = sorted(f for f in unet.iterdir() if f.suffix in (".safetensors", ".bin")) if unet.is_dir() else []
    if not files:
        raise ValueError(f"{path} has no UNet weights in {unet}.")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}:{file.stat().st_size}:".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(_HASH_BYTES))
    return digest.hexdigest()[:12]


def read_safetensors(files: Sequence[Path], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The tensors of safetensors files, floating-point ones in ``dtype``, read one at a time.

    safetensors' own loader maps the whole file into memory, and mapped pages count as the process's memory for
    as long as the map lives: a 3.4 GB float32 UNet loaded as bfloat16 would peak near 5 GB instead of 1.7 GB.
    Ordinary reads hold one float32 tensor at a time.
    """
    state = {}
    for file in files:
        with open(file, "rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_size))
            header.pop("__metadata__", None)
            for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
                begin, end = info["data_offsets"]
                raw = torch.empty(end - begin, dtype=torch.uint8)
                handle.seek(8 + header_size + begin)
                if handle.readinto(memoryview(raw.numpy())) != end - begin:
                    raise ValueError(f"{file} is truncated: {name} is cut short. Download or convert it again.")
                tensor = raw.view(_SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
                state[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return state


def _load_unet(folder: Path, dtype: torch.dtype) -> UNet2DConditionModel | None:
    """The UNet built empty and filled straight from its safetensors file(s) in ``dtype``; None when the folder
    holds another layout (pickled weights, keys from older diffusers), which diffusers' own loader then reads."""
    single = folder / "diffusion_pytorch_model.safetensors"
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = [folder / name for name in dict.fromkeys(weight_map.values())]
    else:
        return None
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder))
    try:
        unet.load_state_dict(read_safetensors(files, dtype), strict=True, assign=True)
    except RuntimeError:
        return None
    return unet


def load_diffusers_model(
    path: str | Path, device: str | torch.device = "auto", dtype: str | torch.dtype = "float32"
) -> DiffusersModel:
    """Load a local SD1/SD2/SDXL diffusers folder, offline, frozen, in ``dtype`` on ``device``."""
    torch_dtype = resolve_dtype(dtype)
    family = detect_family(path)
    pipeline_class = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    extra = {} if family == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    unet = _load_unet(Path(path) / "unet", torch_dtype)
    if unet is not None:
        extra["unet"] = unet
    with warnings.catch_warnings():
        # diffusers 0.42 renamed torch_dtype to dtype; the versions before it know only torch_dtype.
        warnings.filterwarnings("ignore", message=".*torch_dtype.*deprecated", category=FutureWarning)
        pipeline = pipeline_class.from_pretrained(
            str(path), torch_dtype=torch_dtype, local_files_only=True, **extra
        )
    return DiffusersModel(pipeline, device=device, dtype=dtype, model_hash=model_hash(path))
