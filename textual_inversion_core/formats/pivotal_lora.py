"""Pivotal LoRA files: one ``.safetensors`` that LoRA loaders apply and that carries its word.

The adapter is in the kohya layout (``lora_unet_*.lora_down.weight``/``lora_up.weight``/``alpha``, with kohya's
``ss_network_*`` header fields), read by ComfyUI's LoRA loader, A1111/Forge and diffusers' ``load_lora_weights``.
The word rides along as a bundled embedding, as A1111 and ComfyUI read it: ``bundle_emb.<token>.string_to_param.*``
``[n, width]`` for SD1/SD2, ``bundle_emb.<token>.clip_l`` and ``.clip_g`` for SDXL. diffusers' loader refuses
keys it does not know, so it is given ``PivotalLora.lora_weights()`` and the word through
``load_textual_inversion``.
"""

from __future__ import annotations

import os
from pathlib import Path

import safetensors
import safetensors.torch

from ..embedding import Embedding, EmbeddingError
from ..lora.adapter import KOHYA_TEXT_PREFIXES, KOHYA_UNET_PREFIX
from ..lora.pivotal_lora import PivotalLora
from .errors import EmbeddingFileError
from .layouts import BUNDLE_PREFIX, embedding_from_state
from .metadata import DISTRIBUTION, FAMILY_FIELD, TOKEN_FIELD, TOOL_FIELD, TOOL_VERSION_FIELD, decode_header, \
    encode_header, tool_version
from .writing import _exists, _write_atomically

_SINGLE_ENCODER_KEY = "string_to_param.*"


def _bundle_keys(embedding: Embedding) -> dict[str, str]:
    """Encoder name -> its key in the file."""
    if len(embedding.vectors) == 1:
        return {name: f"{BUNDLE_PREFIX}{embedding.token}.{_SINGLE_ENCODER_KEY}" for name in embedding.vectors}
    return {name: f"{BUNDLE_PREFIX}{embedding.token}.{name}" for name in embedding.vectors}


def pivotal_lora_state(lora: PivotalLora) -> dict:
    state = {key: value.contiguous() for key, value in lora.weights.items()}
    for name, key in _bundle_keys(lora.embedding).items():
        state[key] = lora.embedding.vectors[name].contiguous()
    return state


def save_pivotal_lora(lora: PivotalLora, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``lora`` to ``path`` (``.safetensors`` is added to a name without it); an existing file is left
    untouched and ``EmbeddingFileError`` raised unless ``overwrite``."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    if path.exists() and not overwrite:
        raise _exists(path)
    embedding = lora.embedding
    header = {
        **embedding.metadata, TOKEN_FIELD: embedding.token, TOOL_FIELD: DISTRIBUTION,
        TOOL_VERSION_FIELD: tool_version(),
        "ss_network_module": "networks.lora", "ss_network_dim": lora.rank, "ss_network_alpha": lora.alpha,
    }
    if embedding.family is not None:
        header[FAMILY_FIELD] = embedding.family
    _write_atomically(path, safetensors.torch.save(pivotal_lora_state(lora), metadata=encode_header(header)),
                      overwrite)
    return path


def is_pivotal_lora(path: str | os.PathLike) -> bool:
    try:
        with safetensors.safe_open(str(path), "pt") as handle:
            keys = list(handle.keys())
    except Exception:  # not a safetensors file at all
        return False
    return any(k.startswith(KOHYA_UNET_PREFIX) for k in keys) and any(k.startswith(BUNDLE_PREFIX) for k in keys)


def load_snapshot(path: str | os.PathLike) -> Embedding | PivotalLora:
    """What a training run left in ``path``: a pivotal LoRA, or else a word in any embedding format."""
    from .reading import load_embedding

    return load_pivotal_lora(path) if is_pivotal_lora(path) else load_embedding(path)


def load_pivotal_lora(path: str | os.PathLike) -> PivotalLora:
    """Read a file ``save_pivotal_lora`` wrote (or any kohya LoRA with one bundled SD word)."""
    path = Path(path)
    try:
        with safetensors.safe_open(str(path), "pt") as handle:
            state = {key: handle.get_tensor(key) for key in handle.keys()}
            header = decode_header(handle.metadata())
    except FileNotFoundError:
        raise EmbeddingFileError(f"{path} does not exist.") from None
    except Exception as err:
        raise EmbeddingFileError(f"{path} is not a safetensors file ({err}).") from err
    weights = {k: v for k, v in state.items() if k.startswith((KOHYA_UNET_PREFIX, *KOHYA_TEXT_PREFIXES))}
    bundled = {k: v for k, v in state.items() if k.startswith(BUNDLE_PREFIX)}
    if not weights or not bundled:
        raise EmbeddingFileError(
            f"{path} is not a pivotal LoRA: it needs UNet LoRA weights (lora_unet_*) and a bundled word "
            f"(bundle_emb.<token>.*); it has {len(weights)} LoRA tensors and {len(bundled)} bundled ones."
        )
    try:
        embedding = embedding_from_state(bundled, token=None, fallback_name=path.stem, metadata=header)
    except EmbeddingError as err:
        raise EmbeddingFileError(f"Cannot read the word in {path}: {err}") from err
    return PivotalLora(embedding, weights)
