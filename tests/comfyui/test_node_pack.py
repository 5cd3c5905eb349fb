"""The node pack as the ComfyUI frontend finds it: a help page for every node, in English and Chinese, at the URL
the frontend asks for, and English and Chinese translations of every node, input and output in ComfyUI's /i18n.

The frontend reads a custom node's help page from ``/extensions/<pack folder>/docs/<node id>/<locale>.md``, else
``.../docs/<node id>.md`` (the pack's ``web/docs/``), and its translations from ``locales/<locale>/*.json``.
"""

from __future__ import annotations

import re
import urllib.error

import pytest

from comfy_server import EXTENSION_NAME

pytestmark = pytest.mark.comfyui

CATEGORY = "textual inversion"


@pytest.fixture(scope="module")
def our_nodes(server) -> dict[str, dict]:
    return {name: info for name, info in server.get("/object_info").items() if info["category"] == CATEGORY}


@pytest.fixture(scope="module")
def translations(server) -> dict:
    return server.get("/i18n")


def input_names(info: dict) -> list[str]:
    return [*info["input"].get("required", {}), *info["input"].get("optional", {})]


def help_page(server, node_id: str, locale: str | None = None) -> str:
    """The page as the frontend fetches it for ``locale``: ``docs/<id>/<locale>.md`` or, for the default,
    ``docs/<id>.md``."""
    path = f"{node_id}/{locale}.md" if locale else f"{node_id}.md"
    try:
        return server.request(f"/extensions/{EXTENSION_NAME}/docs/{path}").decode("utf-8")
    except urllib.error.HTTPError as error:
        pytest.fail(f"No help page {path} ({error.code}): add web/docs/{path}.")


def test_every_node_has_an_english_help_page_explaining_each_input(server, our_nodes):
    assert len(our_nodes) >= 5
    for node_id, info in our_nodes.items():
        # Given a node of the pack, when the frontend fetches its default help page,
        page = help_page(server, node_id)
        # then the page is titled with the node's name, explains every input by name,
        assert page.startswith(f"# {info['display_name']}\n"), node_id
        missing = [name for name in input_names(info) if f"`{name}`" not in page]
        assert missing == [], f"web/docs/{node_id}.md does not explain {missing}"
        # and has a worked example and the common mistakes.
        assert "\n## Example\n" in page and re.search(r"\n## Common mistakes\b", page), node_id


def test_every_node_has_a_chinese_help_page_in_the_chinese_names_of_its_inputs(server, our_nodes, translations):
    chinese = translations["zh"]["nodeDefs"]
    for node_id, info in our_nodes.items():
        page = help_page(server, node_id, "zh")
        # Written in Chinese, titled with the node's Chinese name, naming every input as the Chinese UI shows it.
        assert page.startswith(f"# {chinese[node_id]['display_name']}\n"), node_id
        assert len(re.findall(r"[\u4e00-\u9fff]", page)) > 200, f"web/docs/{node_id}/zh.md is hardly Chinese"
        missing = [name for name in input_names(info) if chinese[node_id]["inputs"][name]["name"] not in page]
        assert missing == [], f"web/docs/{node_id}/zh.md does not name the inputs {missing}"
        assert "## 示例" in page and "## 常见问题" in page, node_id


def test_english_translations_say_what_the_node_definitions_say(our_nodes, translations):
    # What the English locale leaves out, the frontend takes from the node definition; what it gives must match.
    english = translations["en"]["nodeDefs"]
    for node_id, info in our_nodes.items():
        entry = english[node_id]
        assert entry["display_name"] == info["display_name"]
        assert entry.get("description", info["description"]) == info["description"], node_id
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                tooltip = (spec[1] if len(spec) > 1 else {}).get("tooltip")
                assert entry["inputs"][name]["name"] == name
                assert entry["inputs"][name].get("tooltip", tooltip) == tooltip, (node_id, name)
        tooltips = info.get("output_tooltips") or [None] * len(info["output_name"])
        assert set(entry["outputs"]) == {str(i) for i in range(len(info["output_name"]))}, node_id
        for index, (name, tooltip) in enumerate(zip(info["output_name"], tooltips)):
            assert entry["outputs"][str(index)]["name"] == name
            assert entry["outputs"][str(index)].get("tooltip", tooltip) == tooltip, (node_id, name)


def test_chinese_translations_cover_every_node_input_output_and_the_category(our_nodes, translations):
    chinese = translations["zh"]
    assert chinese["nodeCategories"][CATEGORY] == "文本反演"
    for node_id, info in our_nodes.items():
        entry = chinese["nodeDefs"][node_id]
        assert re.search(r"[\u4e00-\u9fff]", entry["display_name"]), node_id
        assert re.search(r"[\u4e00-\u9fff]", entry["description"]), node_id
        assert set(entry["inputs"]) == set(input_names(info)), node_id
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                has_tooltip = len(spec) > 1 and "tooltip" in spec[1]
                assert entry["inputs"][name]["name"], (node_id, name)
                assert not has_tooltip or re.search(r"[\u4e00-\u9fff]", entry["inputs"][name]["tooltip"]), \
                    f"no Chinese tooltip for {node_id}.{name}"
        assert set(entry["outputs"]) == {str(i) for i in range(len(info["output_name"]))}, node_id
