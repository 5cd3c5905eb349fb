"""User errors under a host: however a host imports the project, an error is titled by its place in the project."""

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

# ComfyUI's way of importing a custom node folder: its path (dots made "_x_") as the package name.
IMPORT_AS_COMFYUI_DOES = """
import importlib, importlib.util, sys
folder = sys.argv[1]
name = folder.replace(".", "_x_")
spec = importlib.util.spec_from_file_location(name, folder + "/__init__.py", submodule_search_locations=[folder])
sys.modules[name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sys.modules[name])
for module, error in [("textual_inversion_core.data", "ConceptDataError"), ("textual_inversion_core.errors",
                      "UserError"), ("textual_inversion_core.formats", "UnsafeEmbeddingFileError")]:
    cls = getattr(importlib.import_module(name + "." + module), error)
    print(cls.__module__ + "." + cls.__qualname__)
"""


def test_errors_are_named_by_their_place_in_the_project_when_a_host_imports_it_inside_its_own_package():
    # Given the checkout imported as ComfyUI imports a custom node, under a package named by its folder's path,
    run = subprocess.run([sys.executable, "-c", IMPORT_AS_COMFYUI_DOES, str(REPOSITORY)], capture_output=True,
                         text=True, check=True)
    # then each user error's full name, which ComfyUI titles the error with, is short and says where it is from.
    assert run.stdout.split() == [
        "textual_inversion_core.data.ConceptDataError",
        "textual_inversion_core.errors.UserError",
        "textual_inversion_core.formats.errors.UnsafeEmbeddingFileError",
    ]
