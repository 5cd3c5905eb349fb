"""A local diffusers folder: which family it is, a hash naming it, and the pipeline loaded offline."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from ...errors import ModelError, ModelNotFound
from ...families import FAMILY_ENCODERS, family_of_single_encoder
from ...inspection import Vocabulary
from ...precision import resolve_dtype
from .model import DiffusersModel
from .text_encoders import PIPELINE_ENCODERS, TextEncoder
from .weights import load_unet

# How much of each UNet weight file the model hash reads: enough to tell models apart, cheap for a 5 GB file.
_HASH_BYTES = 4 << 20


def detect_family(path: str | Path) -> str:
    """``sd1``, ``sd2`` or ``sdxl`` for a diffusers folder, read from its configs without loading weights."""
    path = Path(path)
    if not path.is_dir():
        raise ModelNotFound(f"No model folder at {path}.")
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise ModelError(
            f"{path} is not a diffusers model folder (it has no model_index.json). Point to the folder that "
            "holds model_index.json, unet/, vae/, text_encoder/ and tokenizer/."
        )
    index = json.loads(index_file.read_text(encoding="utf-8"))
    if (index.get("text_encoder_2") or [None])[0] is not None:
        if (index.get("text_encoder") or [None])[0] is None:
            raise ModelError(f"{path} has only SDXL's second text encoder (a refiner?); it cannot learn a word.")
        return "sdxl"
    config_file = path / "text_encoder" / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{path} has no text_encoder/config.json; a Stable Diffusion folder needs its text encoder.")
    width = json.loads(config_file.read_text(encoding="utf-8"))["hidden_size"]
    return family_of_single_encoder(width, f"The text encoder in {config_file}")


def model_hash(path: str | Path) -> str:
    """A short hash identifying a diffusers folder's UNet weights: the files' names, sizes and first megabytes."""
    unet = Path(path) / "unet"
    files = sorted(f for f in unet.iterdir() if f.suffix in (".safetensors", ".bin")) if unet.is_dir() else []
    if not files:
        raise ModelError(f"{path} has no UNet weights in {unet}.")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}:{file.stat().st_size}:".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(_HASH_BYTES))
    return digest.hexdigest()[:12]


def load_diffusers_model(
    path: str | Path, device: str | torch.device = "auto", dtype: str | torch.dtype = "float32", compile: bool = False
) -> DiffusersModel:
    """Load a local SD1/SD2/SDXL diffusers folder, offline, frozen, in ``dtype`` on ``device``; with ``compile``
    the UNet's training passes run compiled (``textual_inversion_core.compilation``)."""
    torch_dtype = resolve_dtype(dtype)
    family = detect_family(path)
    pipeline_class = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    extra = {} if family == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    unet = load_unet(Path(path) / "unet", torch_dtype)
    if unet is not None:
        extra["unet"] = unet
    with warnings.catch_warnings():
        # diffusers 0.42 renamed torch_dtype to dtype; the versions before it know only torch_dtype.
        warnings.filterwarnings("ignore", message=".*torch_dtype.*deprecated", category=FutureWarning)
        pipeline = pipeline_class.from_pretrained(
            str(path), torch_dtype=torch_dtype, local_files_only=True, **extra
        )
    return DiffusersModel(pipeline, device=device, dtype=dtype, model_hash=model_hash(path), compile=compile)


def load_vocabularies(path: str | Path) -> dict[str, Vocabulary]:
    """Each text encoder's vocabulary in a diffusers folder, by encoder name; only the tokenizers and text
    encoders are loaded, offline."""
    path = Path(path)
    vocabularies = {}
    for name, (tokenizer, model) in zip(FAMILY_ENCODERS[detect_family(path)], PIPELINE_ENCODERS):
        # SDXL's second encoder carries the projection its pooled output goes through.
        model_class = CLIPTextModelWithProjection if model == "text_encoder_2" else CLIPTextModel
        encoder = TextEncoder(
            name,
            CLIPTokenizer.from_pretrained(path / tokenizer, local_files_only=True),
            model_class.from_pretrained(path / model, local_files_only=True),
        )
        vocabularies[name] = encoder.vocabulary()
    return vocabularies
