"""PyTorch pickles (``.pt``, ``.bin``) read without ever running code from them.

A pickle can name any Python callable and have it called while loading, so community ``.pt`` files are read
only through PyTorch's restricted ``weights_only`` unpickler: it rebuilds tensors and plain containers and
refuses every other global before calling anything.

Two legitimate layouts need one more class: old AUTOMATIC1111 files and the paper's official checkpoints
pickle a whole ``torch.nn.ParameterDict`` under ``string_to_param``. Rather than allow-listing that module
(whose ``__setstate__`` would then run on the file's data), its name is mapped to an inert record that only
stores the pickled attributes; the parameters are taken from its ``_parameters`` table, which every PyTorch
version since 1.x pickles.
"""

from __future__ import annotations

import contextlib
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from .errors import EmbeddingFileError, UnsafeEmbeddingFileError

PARAMETER_DICT = "torch.nn.modules.container.ParameterDict"
_TORCH_VERSION = tuple(int(part) for part in re.findall(r"\d+", torch.__version__)[:2])


class _PickledParameterDict:
    """Stands in for ``torch.nn.ParameterDict`` while unpickling: keeps its attributes, runs nothing."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _parameters_of(record: _PickledParameterDict, path: Path) -> dict[str, torch.Tensor]:
    state = getattr(record, "state", None)
    parameters = state.get("_parameters") if isinstance(state, dict) else None
    if not isinstance(parameters, (dict, OrderedDict)):
        raise EmbeddingFileError(
            f"{path} holds a torch.nn.ParameterDict without its parameter table; the file is damaged or was "
            "written by an unusual tool. Re-export it as .safetensors where it was made."
        )
    return dict(parameters)


def _replace_records(value: Any, path: Path) -> Any:
    if isinstance(value, _PickledParameterDict):
        return _parameters_of(value, path)
    if isinstance(value, dict):
        return {key: _replace_records(item, path) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_replace_records(item, path) for item in value)
    return value


# How the restricted unpickler words a refusal to import or call something; the name follows "GLOBAL".
_CODE_REQUEST = re.compile(r"unsupported global|call reduce|create new object", re.IGNORECASE)
_REQUESTED_NAME = re.compile(r"GLOBAL (\S+)")


def _read_error(path: Path, err: Exception) -> EmbeddingFileError:
    message = str(err)
    if isinstance(err, pickle.UnpicklingError) and _CODE_REQUEST.search(message):
        names = _REQUESTED_NAME.findall(message)
        wanted = f" (it asks for {names[0]})" if names else ""
        return UnsafeEmbeddingFileError(
            f"{path} was refused: loading it would run code{wanted}, and embedding files only need tensors, so "
            "nothing from it was executed. Ask its author for a .safetensors version, or convert it yourself "
            "only if you trust where it came from."
        )
    # The restricted unpickler wraps its finding in paragraphs of advice about weights_only; keep the finding.
    finding = re.search(r"WeightsUnpickler error:\s*(\S.*)", message)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    detail = finding.group(1) if finding else (lines[0] if lines else "it ends unexpectedly")
    return EmbeddingFileError(
        f"{path} is truncated or damaged and could not be read as a PyTorch file ({type(err).__name__}: "
        f"{detail}). Download or export it again."
    )


def _parameter_dicts_allowed():
    """While active, the restricted unpickler builds the inert record wherever a file names ParameterDict.

    Mapping a global to a stand-in of another name needs PyTorch 2.6's ``(object, name)`` form; older
    versions still read every plain-dictionary file, and explain the rest in ``read_torch_pickle``.
    """
    if _TORCH_VERSION < (2, 6):
        return contextlib.nullcontext()
    return torch.serialization.safe_globals([(_PickledParameterDict, PARAMETER_DICT)])


def read_torch_pickle(path: Path) -> Any:
    """The object in a ``torch.save`` file (zip or legacy format), ParameterDicts as ``{name: tensor}``."""
    try:
        with _parameter_dicts_allowed():
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, OSError) as err:
        if PARAMETER_DICT in str(err) and _TORCH_VERSION < (2, 6):
            raise EmbeddingFileError(
                f"{path} stores its vectors in a torch.nn.ParameterDict (an early A1111 or the paper's format), "
                f"which PyTorch {torch.__version__} cannot read safely; PyTorch 2.6 or newer can. Upgrade "
                "PyTorch, or use a .safetensors version of the embedding."
            ) from err
        raise _read_error(path, err) from err
    return _replace_records(loaded, path)
