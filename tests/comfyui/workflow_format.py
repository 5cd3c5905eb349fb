"""The two JSON forms of a ComfyUI workflow: the UI form users drag in, and the API form ``/prompt`` takes.

``ui_to_api`` does what the frontend does when it queues a graph, from the server's own node definitions
(``/object_info``): widget values are matched to the node's widget inputs in order (a seed's "control after
generate" setting takes an extra slot), links become ``[source node id, output index]``, and notes are dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY_NODES = {"Note", "MarkdownNote"}
_MISSING = object()


def is_widget(spec: list) -> bool:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not options.get("forceInput")


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY_NODES:
            continue
        definition = object_info[node["type"]]["input"]
        specs = {**definition.get("required", {}), **definition.get("optional", {})}
        inputs = {}
        values = iter(node.get("widgets_values", []))
        for name, spec in specs.items():
            if is_widget(spec):
                # A workflow saved before a widget was added has no value for it: the widget keeps its default.
                value = next(values, _MISSING)
                if value is _MISSING:
                    break
                inputs[name] = value
                if has_control_widget(name, spec):
                    next(values, None)
        for socket in node.get("inputs", []):
            if socket.get("link") is not None:
                _, source, output, *_ = links[socket["link"]]
                inputs[socket["name"]] = [str(source), output]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def has_control_widget(name: str, spec: list) -> bool:
    """The frontend's rule: an INT gets a "control after generate" widget when its spec asks for one, or, when
    the spec says nothing, when it is named seed or noise_seed."""
    options = spec[1] if len(spec) > 1 else {}
    if spec[0] != "INT":
        return bool(options.get("control_after_generate"))
    return options.get("control_after_generate", name in ("seed", "noise_seed"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def node_of(prompt: dict, class_type: str, **inputs) -> dict:
    """The one node of ``class_type`` (whose inputs include ``inputs``) in an API-form prompt."""
    found = [
        node for node in prompt.values()
        if node["class_type"] == class_type and all(node["inputs"].get(k) == v for k, v in inputs.items())
    ]
    assert len(found) == 1, f"expected one {class_type} node with {inputs}, found {len(found)}"
    return found[0]


def node_ids_by_name(object_info: dict, category: str) -> dict[str, str]:
    """The node ids of a category by display name: what users see stays put when ids are renamed."""
    return {info["display_name"]: node_id for node_id, info in object_info.items() if info["category"] == category}
