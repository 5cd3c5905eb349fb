"""Import this checkout as ComfyUI imports a custom node: a package loaded from the folder's ``__init__.py`` under
a name of its own, so the relative imports between ``nodes`` and ``textual_inversion_core`` resolve as they do
inside ComfyUI. For scripts that run in ComfyUI's Python without a server: the benchmark's ComfyUI run and the
ComfyUI tests' checks."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "textual_inversion_extension"


def extension_module(repository: Path, name: str) -> ModuleType:
    """The extension's module ``name`` (e.g. ``nodes.comfy_host``), the package imported on first use."""
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACKAGE, Path(repository) / "__init__.py",
                                                      submodule_search_locations=[str(repository)])
        sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[PACKAGE])
    return importlib.import_module(f"{PACKAGE}.{name}")
