"""How every check script starts: ComfyUI's folder on ``sys.path`` with its arguments set as if started with
``--cpu`` (and any other flags), before the first of its modules reads them, and the benchmark's folder, which
holds the loader that imports this checkout as ComfyUI imports a custom node (``extension_import``)."""

from __future__ import annotations

import sys
from pathlib import Path


def start_comfyui(comfyui_path: str, repository: Path, **flags: bool) -> None:
    sys.path[:0] = [comfyui_path, str(repository / "bench")]
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management looks for a GPU
    for name, value in flags.items():
        setattr(comfy.cli_args.args, name, value)
