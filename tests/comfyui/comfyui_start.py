"""How every check script starts ComfyUI in its own process: its folder on ``sys.path`` and its arguments set as
if started with ``--cpu`` (and any other flags), before the first of its modules reads them."""

from __future__ import annotations

import sys


def start_comfyui(comfyui_path: str, **flags: bool) -> None:
    sys.path.insert(0, comfyui_path)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management looks for a GPU
    for name, value in flags.items():
        setattr(comfy.cli_args.args, name, value)
