"""The architecture as the imports draw it: data flows one way, the core knows nothing of ComfyUI, and the demo's
scaffolding stays out of the product."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGES = ("textual_inversion_core", "nodes")
COMFYUI_MODULES = ("comfy", "comfy_api", "comfy_execution", "comfy_extras", "folder_paths", "server", "nodes")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPOSITORY).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (REPOSITORY / package).rglob("*.py")}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """What the module imports, anywhere in it (a function-level import ties modules as much as a top-level one):
    the project's own modules by name, anything else by its top-level name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # "from .pkg import name" names a module when there is one of that name, else a member of ``target``
            members = {f"{target}.{alias.name}" for alias in node.names} & known
            found |= members or {target}
    return found


def graph() -> dict[str, set[str]]:
    """Each module's imports. The nodes reach the core as ComfyUI loads the checkout, through the package above
    both (``..textual_inversion_core``), which resolves to the core's own module names here."""
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def own(edges: set[str], known) -> set[str]:
    return {target for target in edges if target in known}


def test_no_module_imports_itself_through_others():
    # Given every import of the core and the nodes
    edges = graph()
    known = set(edges)
    # When the imports are followed from every module
    circles = []

    def visit(name, trail):
        if name in trail:
            circles.append(trail[trail.index(name):] + [name])
            return
        if name in done:
            return
        for target in sorted(own(edges[name], known)):
            visit(target, trail + [name])
        done.add(name)

    done: set[str] = set()
    for name in sorted(edges):
        visit(name, [])
    # Then none comes back to where it started
    assert circles == []


def test_the_core_knows_nothing_of_comfyui():
    edges = graph()
    core = {name: targets for name, targets in edges.items() if name.startswith("textual_inversion_core")}
    assert core, "the core's modules were not found"
    reaching = {name: sorted(t for t in targets if t.split(".")[0] in COMFYUI_MODULES) for name, targets in core.items()}
    assert {name: found for name, found in reaching.items() if found} == {}


def test_only_the_command_line_reaches_the_demo():
    # The demo builds random models and draws pictures; the product's own modules never depend on it
    edges = graph()
    users = {name for name, targets in edges.items()
             if not name.startswith("textual_inversion_core.demo")
             and any(t.startswith("textual_inversion_core.demo") for t in targets)}
    assert users == {"textual_inversion_core.cli"}


@pytest.mark.parametrize("folder", ["textual_inversion_core", "nodes"])
def test_every_module_says_what_it_is_for(folder):
    missing = [name for name, path in modules().items()
               if name.startswith(folder) and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == []


def requirement_names(lines) -> set[str]:
    return {re.match(r"[A-Za-z0-9._-]+", line.strip()).group().lower() for line in lines
            if line.strip() and not line.lstrip().startswith("#")}


def test_requirements_txt_holds_what_the_nodes_import_and_pyproject_says_the_same():
    # Given every module the nodes reach, in the nodes and in the core,
    edges = graph()
    reached, todo = set(), [name for name in edges if name.startswith("nodes")]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += own(edges[name], edges)
    # when the packages they import from outside the project, Python and ComfyUI are named by distribution,
    outside = {target.split(".")[0] for name in reached for target in edges[name] if target not in edges}
    outside -= set(COMFYUI_MODULES) | set(sys.stdlib_module_names) | {"__future__"}
    distributions = {packages_distributions()[name][0].lower() for name in outside}
    # then requirements.txt lists exactly those (diffusers and transformers stay the command line's),
    requirements = requirement_names((REPOSITORY / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert requirements == distributions
    # and pyproject's dependencies are the same, so a registry install and a clone into custom_nodes agree.
    tomllib = pytest.importorskip("tomllib", reason="Python reads TOML from 3.11 on")
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert requirement_names(project["dependencies"]) == requirements
