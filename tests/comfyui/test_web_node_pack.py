"""The node pack in ComfyUI's own page, in headless Chromium: each node's help page opens from the node, in English
and, with the Chinese locale, in Chinese beside nodes whose names are Chinese; the templates list shows the examples
with their thumbnails; and the page is only taken as ready once it knows the node types.

Screenshots go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from comfy_server import EXTENSION_NAME, REPOSITORY
from examples import EXAMPLES
from web_page import ComfyPage

pytestmark = pytest.mark.comfyui

ARTIFACTS = REPOSITORY / "test-artifacts"
CATEGORY = "textual inversion"

# A graph holding only a new node of the given type, selected, as if the user had just added it.
ADD_AND_SELECT = """(type) => {
  const app = window.comfyAPI.app.app;
  app.rootGraph.clear();
  const node = LiteGraph.createNode(type);
  app.rootGraph.add(node);
  // In the middle of the screen, so the toolbox over it is clear of the menus at the top.
  app.canvas.ds.scale = 1;
  app.canvas.centerOnNode(node);
  app.canvas.selectNode(node);
  app.canvas.setDirty(true, true);
}"""

# The help page on screen: its title and its text, once the markdown has been rendered.
HELP_SHOWN = """() => {
  const help = document.querySelector(".node-help-content");
  const title = help?.querySelector("h1")?.innerText;
  return title ? {title, text: help.innerText} : null;
}"""


# The page's own fetch, holding back the server's node definitions for 3 s (in the page, so the test itself waits
# for nothing).
DELAY_NODE_DEFINITIONS = """{
  const fetchNow = window.fetch;
  window.fetch = async (resource, options) => {
    if (String(resource?.url ?? resource).includes("/object_info")) await new Promise((done) => setTimeout(done, 3000));
    return fetchNow(resource, options);
  };
}"""


@pytest.fixture(scope="module")
def our_nodes(server) -> dict[str, dict]:
    return {name: info for name, info in server.get("/object_info").items() if info["category"] == CATEGORY}


def open_page(server, browser, locale: str = "en", height: int = 1000) -> ComfyPage:
    # A first visit opens the template browser over the graph; this user has seen it.
    server.request("/settings/Comfy.TutorialCompleted", True)
    server.request("/settings/Comfy.Locale", locale)
    page = ComfyPage(browser, server.url, viewport={"width": 1600, "height": height})
    page.open()
    return page


def show_help(page: ComfyPage, node_type: str, title: str) -> dict:
    """Add a node of ``node_type`` and open its help as a user does: the info button over the selected node."""
    page.evaluate(ADD_AND_SELECT, node_type)
    page.page.locator('[data-testid="info-button"]').click()
    page.wait_for(f"() => ({HELP_SHOWN})()?.title === {title!r}", timeout=30)
    return page.evaluate(HELP_SHOWN)


def errors(page: ComfyPage) -> list[str]:
    # The frontend asks for docs/<id>/<locale>.md before docs/<id>.md; the English pages are the default ones, so
    # its first ask for them is answered 404 by design.
    return [error for error in page.errors if not re.search(r"status of 404 .*/docs/\w+/en\.md\)$", error)]


def screenshot(page: ComfyPage, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / name))


def test_each_node_opens_its_help_page(server, browser, our_nodes):
    page = open_page(server, browser, height=1600)
    try:
        for node_id, info in our_nodes.items():
            # Given a node of the pack on the graph, when the user selects it and presses its info button,
            help = show_help(page, node_id, info["display_name"])
            # then the side panel shows the pack's help page for it, with its example and common mistakes.
            assert "Example" in help["text"] and "Common mistakes" in help["text"], node_id
            screenshot(page, f"help_{node_id}.png")
        assert errors(page) == []
    finally:
        page.close()


def test_in_chinese_the_nodes_and_their_help_pages_are_chinese(server, browser, our_nodes):
    chinese = server.get("/i18n")["zh"]["nodeDefs"]
    page = open_page(server, browser, locale="zh", height=1600)
    try:
        # Given the Chinese locale, when the training example is opened,
        page.evaluate("async (url) => window.comfyAPI.app.app.loadGraphData(await (await fetch(url)).json())",
                      f"/api/workflow_templates/{EXTENSION_NAME}/train_embedding.json")
        train = page.evaluate("""() => {
          const node = window.comfyAPI.app.app.rootGraph.nodes.find((n) => n.comfyClass === "TextualInversionTrainEmbedding");
          return {title: node.title, inputs: node.inputs.map((i) => i.localized_name ?? i.label ?? i.name),
                  widgets: node.widgets.map((w) => w.label ?? w.name)};
        }""")
        # then its nodes, inputs and widgets are named in Chinese,
        entry = chinese["TextualInversionTrainEmbedding"]
        assert train["title"] == entry["display_name"] == "训练嵌入"
        assert entry["inputs"]["images"]["name"] in train["inputs"]
        assert {entry["inputs"][name]["name"] for name in ("token", "init_text", "steps")} <= set(train["widgets"])
        page.evaluate("() => window.comfyAPI.app.app.canvas.setDirty(true, true)")
        page.page.wait_for_timeout(200)  # a frame for the canvas to draw the names
        screenshot(page, "zh_train_embedding.png")
        # and each node's help page is the Chinese one.
        for node_id in our_nodes:
            help = show_help(page, node_id, chinese[node_id]["display_name"])
            assert "示例" in help["text"] and "常见问题" in help["text"], node_id
            screenshot(page, f"help_{node_id}_zh.png")
        assert errors(page) == []
    finally:
        page.close()
        server.request("/settings/Comfy.Locale", "en")


def test_the_templates_list_shows_the_examples_with_their_thumbnails(server, browser):
    examples = sorted(path.stem for path in EXAMPLES.glob("*.json"))
    page = open_page(server, browser)
    fetched = {}  # the frontend fetches each thumbnail and shows it from a blob: URL
    page.page.on("response", lambda response: fetched.setdefault(urlparse(response.url).path, response.status))
    try:
        # Given the templates list, when the user opens the pack's templates,
        page.page.get_by_role("button", name="Templates").click()
        page.page.get_by_role("dialog").get_by_text("Textual Inversion", exact=True).click()
        # then each example is there with its thumbnail, fetched from beside the workflow and shown whole.
        page.wait_for("""(names) => names.every((name) => [...document.querySelectorAll("[role=dialog] img")].some(
            (img) => img.alt === name && img.complete && img.naturalWidth > 0))""", examples, 60)
        shown = page.evaluate("""() => [...document.querySelectorAll("[role=dialog] img")].map((img) =>
            [img.alt, img.naturalWidth, img.naturalHeight])""")
        assert sorted(shown) == [[name, 256, 256] for name in examples]
        for name in examples:
            assert fetched.get(f"/api/workflow_templates/{EXTENSION_NAME}/{name}.jpg") == 200, name
        page.page.wait_for_timeout(300)  # the cards fade in
        screenshot(page, "templates.png")
        assert errors(page) == []
    finally:
        page.close()


def test_a_page_is_ready_only_once_it_knows_the_node_types_however_late_they_come(server, browser):
    # Given the server's node definitions reach the page seconds after the graph and the extensions exist,
    page = ComfyPage(browser, server.url)
    page.page.add_init_script(DELAY_NODE_DEFINITIONS)
    try:
        # when the page is taken as ready,
        page.open()
        # then a workflow loaded now has real nodes, not "missing" placeholders.
        types = page.evaluate("""async (url) => {
          const app = window.comfyAPI.app.app;
          await app.loadGraphData(await (await fetch(url)).json());
          return app.rootGraph.nodes.map((node) => node.comfyClass ?? null);
        }""", f"/api/workflow_templates/{EXTENSION_NAME}/train_embedding.json")
        assert "TextualInversionTrainEmbedding" in types and "CheckpointLoaderSimple" in types
    finally:
        page.close()
