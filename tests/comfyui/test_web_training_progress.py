"""The frontend extension (``web/``) in ComfyUI's own page, in headless Chromium: the Train Embedding node shows its
training as it happens (loss curve, step / total, learning rate, time, preview) and shows the last run again after
a page reload; the example workflows are among ComfyUI's templates, with their thumbnails.

Screenshots go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from comfy_server import EXTENSION_NAME, REPOSITORY
from examples import CHECKPOINT, EXAMPLES, TRAINING_SIZE
from web_page import ComfyPage
from workflow_format import load

pytestmark = pytest.mark.comfyui

ARTIFACTS = REPOSITORY / "test-artifacts"
STEPS = 6
PREVIEW_EVERY = 3
LEARNING_RATE = 0.005

# Loads the example as a template the way the frontend fetches it, scales it down to the test checkpoint, starts
# recording what the user would read on the node, and queues it as the Run button does.
QUEUE_SHORT_TRAINING = """async ({template, widgets}) => {
  const app = window.comfyAPI.app.app, api = window.comfyAPI.api.api;
  await app.loadGraphData(await (await api.fetchApi(template)).json());
  for (const [type, name, value] of widgets) {
    const nodes = app.rootGraph.nodes.filter((node) => node.comfyClass === type);
    if (nodes.length === 0) throw new Error(`no ${type} node in the example workflow`);
    for (const node of nodes) node.widgets.find((widget) => widget.name === name).value = value;
  }
  window.seen = {steps: [], texts: []};
  api.addEventListener("textual_inversion.progress", ({detail}) => window.seen.steps.push(detail.step));
  new MutationObserver((records) => {
    for (const record of records) {
      if (!record.target.closest?.(".ti-panel")) continue;
      for (const added of record.addedNodes) if (added.nodeType === Node.TEXT_NODE) window.seen.texts.push(added.data);
    }
  }).observe(document.body, {childList: true, subtree: true});
  await app.queuePrompt(0);
  return String(app.rootGraph.nodes.find((node) => node.comfyClass === "TextualInversionTrainEmbedding").id);
}"""

RUN_ON_NODE = """(id) => {
  const run = window.comfyAPI.app.app.rootGraph.getNodeById(id)?.trainingRun;
  return run ? {steps: run.points.map(([step]) => step), step: run.step, total: run.total, lr: run.lr,
                elapsed: run.elapsed, status: run.status, preview: run.preview,
                previewSteps: (run.previews ?? []).map(p => p.step), norm: run.norm} : null;
}"""

# Pixels of the smoothed curve's blue on the node's chart, and whether the preview picture has loaded.
PANEL_PIXELS = """(id) => {
  const node = window.comfyAPI.app.app.rootGraph.getNodeById(id);
  const panel = node.widgets.find((widget) => widget.name === "training_progress").element;
  const canvas = panel.querySelector("canvas");
  const {data} = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let blue = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i + 2] > 200 && data[i] < 130 && data[i + 3] > 200) blue += 1;
  const image = panel.querySelector("img");
  return {blue, previewShown: !image.closest("figure").hidden && image.complete && image.naturalWidth > 0,
          text: panel.innerText};
}"""


# The titles of the nodes that come within `margin` graph units of the node, title bars included (from the
# nodes' sizes: the canvas updates its own bounding boxes only when it next draws).
NODES_CLOSE_TO = """({id, margin}) => {
  const graph = window.comfyAPI.app.app.rootGraph, node = graph.getNodeById(id);
  const box = (n) => [n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, n.size[0], n.size[1] + LiteGraph.NODE_TITLE_HEIGHT];
  const [x, y, width, height] = box(node);
  return graph.nodes.filter((other) => {
    if (other === node) return false;
    const [ox, oy, ow, oh] = box(other);
    return ox < x + width + margin && x < ox + ow + margin && oy < y + height + margin && y < oy + oh + margin;
  }).map((other) => other.title);
}"""


# The Train Embedding node in the middle of the screen, as large as fits.
SHOW_NODE = """(id) => {
  const app = window.comfyAPI.app.app, node = app.rootGraph.getNodeById(id);
  app.canvas.ds.scale = Math.min(1, (window.innerHeight - 120) / node.size[1]);
  app.canvas.centerOnNode(node);
}"""


@pytest.fixture
def page(server, browser):
    # A first visit opens the template browser over the graph; this user has seen it.
    server.request("/settings/Comfy.TutorialCompleted", True)
    page = ComfyPage(browser, server.url)
    page.open()
    yield page
    page.close()


def screenshot(page: ComfyPage, node_id: str, name: str) -> None:
    page.evaluate(SHOW_NODE, node_id)
    page.page.wait_for_timeout(200)  # a frame or two for the canvas and the node's panel to follow
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / name))


def test_example_workflows_are_comfyui_templates(server):
    # Given the extension installed in ComfyUI, when the frontend asks for the custom nodes' templates,
    templates = server.get("/api/workflow_templates")
    # then each example workflow is listed under the extension's name,
    examples = sorted(path.stem for path in EXAMPLES.glob("*.json"))
    assert {"train_embedding", "use_embedding", "several_words"} <= set(examples)
    assert sorted(templates.get(EXTENSION_NAME, [])) == examples
    # served as it is in the repository,
    for name in examples:
        served = json.loads(server.request(f"/api/workflow_templates/{EXTENSION_NAME}/{name}.json"))
        assert served == load(EXAMPLES / f"{name}.json")
        # with its thumbnail where the template browser looks for it: a small square JPEG
        # (tests/comfyui/render_thumbnails.py renders them).
        thumbnail = server.request(f"/api/workflow_templates/{EXTENSION_NAME}/{name}.jpg")
        picture = Image.open(io.BytesIO(thumbnail))
        assert (picture.format, picture.size) == ("JPEG", (256, 256)) and len(thumbnail) < 40_000, name


def test_train_embedding_node_shows_its_training_live_and_after_a_reload(server, page):
    # Given the example training workflow opened as a template and shortened to a few steps on the test checkpoint,
    # when it is queued,
    node_id = page.evaluate(QUEUE_SHORT_TRAINING, {
        "template": f"/workflow_templates/{EXTENSION_NAME}/train_embedding.json",
        "widgets": [
            ["CheckpointLoaderSimple", "ckpt_name", CHECKPOINT],
            ["TextualInversionLoadConceptImages", "resolution", TRAINING_SIZE],
            ["TextualInversionTrainEmbedding", "steps", STEPS],
            ["TextualInversionTrainEmbedding", "learning_rate", LEARNING_RATE],
            ["TextualInversionTrainEmbedding", "preview_every", PREVIEW_EVERY],
            ["TextualInversionSaveEmbedding", "filename_prefix", "web-test"],
            ["EmptyLatentImage", "width", TRAINING_SIZE],
            ["EmptyLatentImage", "height", TRAINING_SIZE],
            ["KSampler", "steps", 1],
        ],
    })
    page.wait_for("id => window.comfyAPI.app.app.rootGraph.getNodeById(id).trainingRun?.step >= 3", node_id, 300)
    screenshot(page, node_id, "web_training_live.png")
    page.wait_for("id => window.comfyAPI.app.app.rootGraph.getNodeById(id).trainingRun?.status === 'done'",
                  node_id, 300)

    # then the node's curve has one point for each step the node reported, and the counter reached the total,
    run = page.evaluate(RUN_ON_NODE, node_id)
    reported = page.evaluate("() => window.seen.steps")
    assert reported == list(range(1, STEPS + 1))
    assert run["steps"] == reported
    assert run["step"] == run["total"] == STEPS and run["status"] == "done"
    assert run["lr"] == pytest.approx(LEARNING_RATE) and run["elapsed"] > 0
    # the user read every step / total go by, with the time elapsed and left,
    texts = page.evaluate("() => window.seen.texts")
    shown_steps = [int(m.group(1)) for text in texts if (m := re.match(rf"step (\d+) / {STEPS}\b", text))]
    # (the panel joins the page a moment after its first step is written into it)
    shown = list(dict.fromkeys(shown_steps))
    assert shown[0] <= 2 and shown == reported[shown[0] - 1:]
    assert any(re.fullmatch(rf"lr {LEARNING_RATE} · \d+:\d\d elapsed · \d+:\d\d left", text) for text in texts), texts
    # the curve is drawn and the latest preview picture is shown,
    page.wait_for(f"id => ({PANEL_PIXELS})(id).previewShown", node_id, 30)
    panel = page.evaluate(PANEL_PIXELS, node_id)
    assert panel["blue"] > 100
    assert run["preview"]["step"] == STEPS and f"validation at step {STEPS} (2 of 2)" in panel["text"]
    # every validation is kept, with the step it came from, and the word's size beside a typical word's is shown
    assert run["previewSteps"] == [PREVIEW_EVERY, STEPS]
    assert run["norm"] > 0 and re.search(r"norm \d+\.\d\d× a word's", panel["text"])
    assert f"step {STEPS} / {STEPS}" in panel["text"] and "done in" in panel["text"]
    # the node has grown to hold chart and preview with room to spare around it in the example's layout,
    assert page.evaluate(NODES_CLOSE_TO, {"id": node_id, "margin": 20}) == []
    screenshot(page, node_id, "web_training_done.png")

    # and after the page is reloaded, the node shows that run again.
    page.reload()
    page.wait_for("id => window.comfyAPI.app.app.rootGraph.getNodeById(id)?.trainingRun", node_id, 60)
    assert page.evaluate(RUN_ON_NODE, node_id) == run
    page.wait_for(f"id => ({PANEL_PIXELS})(id).blue > 100", node_id, 30)
    screenshot(page, node_id, "web_training_after_reload.png")
    assert page.errors == []


# A run of 2500 steps, as the page keeps it for after a reload.
KEPT_LONG_RUN = """async (url) => {
  const {TrainingRun} = await import(url);
  const run = new TrainingRun("a prompt");
  for (let step = 1; step <= 2500; step++) {
    run.addStep({step, total: 2500, loss: 0.1 + 0.05 * Math.sin(step), lr: 0.005, elapsed: step, eta: 2500 - step});
  }
  const kept = TrainingRun.fromJSON(JSON.parse(JSON.stringify(run)));
  return {live: run.points.slice(0, 2), kept: kept.points, last: run.points.at(-1)};
}"""


def test_a_long_run_is_kept_compact_for_after_a_reload(page):
    # Given a run of 2500 steps on the page, when it is kept for after a reload,
    run = page.evaluate(KEPT_LONG_RUN, "/extensions/comfyui-textual-inversion/training_run.js")
    kept = run["kept"]
    # then at most 1000 of its points are kept, spread evenly from the first step to the last,
    assert len(kept) <= 1000 and kept[0][0] == 1 and kept[-1][0] == 2500
    assert len({b[0] - a[0] for a, b in zip(kept, kept[1:-1])}) == 1
    # each with its loss and smoothed loss to 5 significant digits,
    assert kept[-1] == [2500, pytest.approx(run["last"][1], rel=1e-4), pytest.approx(run["last"][2], rel=1e-4)]
    # and the smoothed curve starts at the first loss itself, not at zero.
    assert run["live"][0][2] == run["live"][0][1]
