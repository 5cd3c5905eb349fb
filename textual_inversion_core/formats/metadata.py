"""An embedding's metadata as text: the safetensors header holds only string values."""

from __future__ import annotations

import json
import re
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Mapping

from ..embedding import EmbeddingError

DISTRIBUTION = "comfyui-textual-inversion"

# Header fields that describe the file rather than how the word was made; load_embedding takes the token
# from here and re-derives the family from the vectors, so neither lands in Embedding.metadata.
TOKEN_FIELD = "token"
FAMILY_FIELD = "family"
TOOL_FIELD = "tool"
TOOL_VERSION_FIELD = "tool_version"


def tool_version() -> str:
    """This package's version: from the installed distribution, else from pyproject.toml beside the sources.

    Inside ComfyUI the extension runs from its folder without being pip-installed, hence the second source.
    """
    try:
        return package_metadata.version(DISTRIBUTION)
    except package_metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.MULTILINE)
    except OSError:
        found = None
    return found.group(1) if found else "unknown"


def _looks_like_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def encode_header(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Metadata as safetensors header strings; every value comes back unchanged from ``decode_header``.

    Non-strings are written as JSON. A string is written as itself, so other tools show it plainly, unless it
    would read back as JSON (``"0.005"``, ``"true"``): then it is JSON-quoted to stay a string.
    """
    header: dict[str, str] = {}
    for key, value in metadata.items():
        if isinstance(value, str) and not _looks_like_json(value):
            header[str(key)] = value
            continue
        try:
            header[str(key)] = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise EmbeddingError(
                f"The metadata field {key!r} holds {type(value).__name__} {value!r}, which cannot be stored in an "
                "embedding file; use a string, number, boolean, list or dictionary."
            ) from err
    return header


def decode_header(header: Mapping[str, str] | None) -> dict[str, Any]:
    """The inverse of ``encode_header``; foreign headers (kohya's ``ss_*``) decode the same way."""
    decoded: dict[str, Any] = {}
    for key, text in (header or {}).items():
        try:
            decoded[key] = json.loads(text)
        except ValueError:
            decoded[key] = text
    return decoded
