"""Where trainers put an embedding's tensors inside a file: recognised on reading, produced on writing.

Every container (safetensors, a restricted PyTorch pickle, the JSON inside an A1111 picture) yields a plain
mapping; ``embedding_from_state`` recognises, in this order:

- AUTOMATIC1111 and the paper: ``string_to_param`` -> ``{placeholder: Tensor[n, w]}``, beside ``name``,
  ``step``, ``sd_checkpoint`` and ``sd_checkpoint_name``;
- one key per text encoder: ``clip_l`` + ``clip_g`` (SDXL: kohya, invoke-training, OneTrainer), ``clip_h``
  (SD2); OneTrainer's ``*_out`` companions (output-side vectors) are ignored;
- one tensor under ``emb_params`` (A1111, kohya, invoke-training) or OneTrainer's ``emp_params`` (sic);
- diffusers: ``{token: Tensor[n, w]}``, or one vector per token: ``tok``, ``tok_1``, ... (diffusers) or
  ``tok``, ``tok1``, ... (kohya).

A tensor without an encoder name is assigned one by its width (768 clip_l, 1024 clip_h, 1280 clip_g).
Errors raised here say what is wrong with the contents; the reader adds the file's path.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from ..embedding import Embedding, EmbeddingError
from ..families import ENCODER_BY_WIDTH, ENCODER_WIDTHS
from .metadata import FAMILY_FIELD, TOKEN_FIELD

SINGLE_TENSOR_KEYS = ("emb_params", "emp_params")
COMPANION_SUFFIX = "_out"
A1111_PLACEHOLDER = "*"
# The id A1111 writes under string_to_token. Every reader looks the word up by name instead.
A1111_TOKEN_ID = 265
# Our own field in A1111-style dictionaries, carrying the full metadata; other readers ignore unknown keys.
METADATA_KEY = "metadata"

_WIDTHS_TEXT = ", ".join(f"{width} ({name})" for width, name in ENCODER_BY_WIDTH.items())


def _shape(value: Any) -> str:
    return str(list(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def _matrix(label: str, value: Any, width: int | None = None) -> torch.Tensor:
    """``value`` as ``[n, w]`` (a lone vector ``[w]`` becomes one row), checked against ``width`` if given."""
    if not isinstance(value, torch.Tensor):
        raise EmbeddingError(f"{label} holds a {type(value).__name__}, not a tensor of vectors.")
    if not value.is_floating_point():
        raise EmbeddingError(f"{label} holds {value.dtype} numbers, not floating-point vectors.")
    if value.dim() == 1:
        value = value.unsqueeze(0)
    if value.dim() != 2:
        raise EmbeddingError(f"{label} has shape {_shape(value)}; an embedding is [vectors, width].")
    found = value.shape[1]
    if width is not None and found != width:
        raise EmbeddingError(f"{label} is {found} wide, but vectors stored under that name must be {width} wide.")
    if width is None and found not in ENCODER_BY_WIDTH:
        raise EmbeddingError(
            f"{label} is {found} wide, which matches no Stable Diffusion text encoder (expected {_WIDTHS_TEXT})."
        )
    return value


def _unknown_layout(state: Mapping[str, Any]) -> EmbeddingError:
    shown = [f"{key!r} {_shape(value)}" for key, value in list(state.items())[:8]]
    more = f" and {len(state) - 8} more" if len(state) > 8 else ""
    found = ", ".join(shown) + more if shown else "nothing"
    return EmbeddingError(
        f"its contents are not an embedding layout this reader knows (found {found}). Known layouts: "
        "string_to_param (A1111), emb_params, clip_l/clip_g (SDXL), clip_h (SD2), {token: tensor} (diffusers). "
        "If this is a LoRA or a checkpoint, load it with the matching loader instead."
    )


def _pick(candidates: list[str], token: str | None, what: str) -> str:
    if len(candidates) == 1:
        return candidates[0]
    if token in candidates:
        return token
    listed = ", ".join(repr(c) for c in candidates)
    if token is None:
        raise EmbeddingError(f"it holds {len(candidates)} {what} ({listed}); choose one by giving its name as token.")
    raise EmbeddingError(f"it holds no {what} named {token!r}; choose one of {listed}.")


def _word(name: Any) -> str | None:
    """A name found in a file, made usable as a pseudo-word (A1111 names may contain spaces)."""
    if not isinstance(name, str) or not name.strip():
        return None
    return re.sub(r"\s+", "_", name.strip())


def _placeholders(keys: list[str]) -> dict[str, list[str]]:
    """Group one-vector-per-token keys (``tok``, ``tok_1``, ... or ``tok``, ``tok1``, ...) by their first token."""
    remaining = set(keys)
    groups: dict[str, list[str]] = {}
    # Shortest first, so that "tok" claims "tok_1" before "tok_1" could be taken for a placeholder of its own.
    for base in sorted(keys, key=len):
        if base not in remaining:
            continue
        members = [base]
        for separator in ("_", ""):
            index = 1
            while f"{base}{separator}{index}" in remaining:
                members.append(f"{base}{separator}{index}")
                index += 1
            if len(members) > 1:
                break
        remaining.difference_update(members)
        groups[base] = members
    return {key: groups[key] for key in keys if key in groups}


BUNDLE_PREFIX = "bundle_emb."


def _bundled_words(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A LoRA file's bundled embeddings, as A1111 and ComfyUI read them: word -> {the part after its name:
    tensor} (``string_to_param.*`` for one encoder, ``clip_l``/``clip_g`` for SDXL)."""
    words: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        if key.startswith(BUNDLE_PREFIX) and "." in key[len(BUNDLE_PREFIX):]:
            name, part = key[len(BUNDLE_PREFIX):].split(".", 1)
            words.setdefault(name, {})[part] = value
    return words


def _a1111_metadata(state: Mapping[str, Any]) -> dict[str, Any]:
    # A1111 writes sd_checkpoint but reads "hash"; accept either.
    found = {
        "steps": state.get("step"),
        "base_model_hash": state.get("sd_checkpoint") or state.get("hash"),
        "base_model_name": state.get("sd_checkpoint_name"),
    }
    return {key: value for key, value in found.items() if isinstance(value, (str, int, float))}


def embedding_from_state(
    state: Any, *, token: str | None, fallback_name: str, metadata: Mapping[str, Any]
) -> Embedding:
    """The embedding in a file's decoded contents.

    ``token`` chooses among several placeholders and renames the word; without it the word is the name the
    file gives itself, else ``fallback_name`` (the file's stem). ``metadata`` (the safetensors header) wins over
    what the layout itself records.
    """
    if isinstance(state, torch.Tensor):  # diffusers also accepts a bare tensor saved with torch.save
        state = {fallback_name: state}
    if not isinstance(state, Mapping):
        raise EmbeddingError(f"it holds a {type(state).__name__}, not a dictionary of tensors.")
    state = {str(key): value for key, value in state.items()}
    own_metadata: dict[str, Any] = dict(state[METADATA_KEY]) if isinstance(state.get(METADATA_KEY), Mapping) else {}
    own_name = state.get("name")
    vectors: dict[str, torch.Tensor] = {}

    if "string_to_param" in state:
        table = state["string_to_param"]
        if not isinstance(table, Mapping) or not table:
            raise EmbeddingError(f"its string_to_param holds {_shape(table)} instead of named vectors.")
        params = {str(key): value for key, value in table.items()}
        key = _pick(list(params), token, "placeholders")
        matrix = _matrix(f"string_to_param[{key!r}]", params[key])
        vectors[ENCODER_BY_WIDTH[matrix.shape[1]]] = matrix
        own_metadata = {**_a1111_metadata(state), **own_metadata}

    elif bundled := _bundled_words(state):  # a LoRA carrying its word (a pivotal LoRA, say): the word alone
        own_name = _pick(list(bundled), token, "bundled words")
        for part, value in bundled[own_name].items():
            matrix = _matrix(f"{BUNDLE_PREFIX}{own_name}.{part}", value, ENCODER_WIDTHS.get(part))
            vectors[part if part in ENCODER_WIDTHS else ENCODER_BY_WIDTH[matrix.shape[1]]] = matrix

    elif any(key in ENCODER_WIDTHS for key in state):
        for key, value in state.items():
            if key in ENCODER_WIDTHS:
                vectors[key] = _matrix(key, value, ENCODER_WIDTHS[key])
            elif isinstance(value, torch.Tensor) and not (
                key.endswith(COMPANION_SUFFIX) and key[: -len(COMPANION_SUFFIX)] in ENCODER_WIDTHS
            ):
                raise _unknown_layout(state)

    elif found := [key for key in SINGLE_TENSOR_KEYS if key in state]:
        matrix = _matrix(found[0], state[found[0]])
        vectors[ENCODER_BY_WIDTH[matrix.shape[1]]] = matrix

    else:
        tensors = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
        if not tensors or len(tensors) != len(state):
            raise _unknown_layout(state)
        if len(tensors) > 1 and not all(
            t.dim() in (1, 2) and t.shape[-1] in ENCODER_BY_WIDTH and t.is_floating_point() for t in tensors.values()
        ):
            raise _unknown_layout(state)
        groups = _placeholders(list(tensors))
        own_name = _pick(list(groups), token, "placeholders")
        rows = [_matrix(repr(key), tensors[key]) for key in groups[own_name]]
        if len({row.shape[1] for row in rows}) != 1:
            raise EmbeddingError(
                f"the vectors of {own_name!r} differ in width ({', '.join(str(r.shape[1]) for r in rows)})."
            )
        matrix = torch.cat(rows)
        vectors[ENCODER_BY_WIDTH[matrix.shape[1]]] = matrix

    merged = {**own_metadata, **metadata}
    word = token or _word(merged.get(TOKEN_FIELD)) or _word(own_name) or _word(fallback_name)
    merged = {key: value for key, value in merged.items() if key not in (TOKEN_FIELD, FAMILY_FIELD)}
    return Embedding(word, vectors, merged)


def _ordered(embedding: Embedding) -> list[tuple[str, torch.Tensor]]:
    return [(name, embedding.vectors[name]) for name in ENCODER_WIDTHS if name in embedding.vectors]


def _single_encoder(embedding: Embedding) -> torch.Tensor | None:
    """The one tensor of an SD1/SD2 embedding, which single-tensor layouts hold; None for SDXL and the like."""
    if len(embedding.vectors) == 1 and ("clip_l" in embedding.vectors or "clip_h" in embedding.vectors):
        return next(iter(embedding.vectors.values()))
    return None


def safetensors_state(embedding: Embedding) -> dict[str, torch.Tensor]:
    """``{"emb_params": [n, w]}`` for SD1/SD2, else one key per encoder (``clip_l``, ``clip_g``)."""
    single = _single_encoder(embedding)
    return {"emb_params": single} if single is not None else dict(_ordered(embedding))


def a1111_state(embedding: Embedding) -> dict[str, Any]:
    """A1111's ``.pt`` dictionary. SDXL goes as bare ``clip_l``/``clip_g`` tensors, the only way A1111 reads it."""
    single = _single_encoder(embedding)
    if single is None:
        return dict(_ordered(embedding))
    meta = embedding.metadata
    return {
        "string_to_token": {A1111_PLACEHOLDER: A1111_TOKEN_ID},
        "string_to_param": {A1111_PLACEHOLDER: single},
        "name": embedding.token,
        "step": meta.get("steps") if isinstance(meta.get("steps"), int) else None,
        "sd_checkpoint": meta.get("base_model_hash"),
        "sd_checkpoint_name": meta.get("base_model_name"),
        METADATA_KEY: dict(meta),
    }


def diffusers_states(embedding: Embedding) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """``(encoder, {token: [n, w]})`` per text encoder: diffusers loads one encoder's file at a time."""
    return [(name, {embedding.token: tensor}) for name, tensor in _ordered(embedding)]
