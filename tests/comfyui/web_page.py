"""ComfyUI's page in headless Chromium (Debian's ``chromium``, driven by Python's ``playwright``), for the tests of
the frontend extension in ``web/``.

The page's own objects are reached as extensions reach them: ``window.comfyAPI.app.app`` and
``window.comfyAPI.api.api`` are what ``scripts/app.js`` and ``scripts/api.js`` hand out.
"""

from __future__ import annotations

import os
import shutil

import pytest

EXTENSION_URL = "/extensions/comfyui-textual-inversion/"
# No sandbox (root in a container), no GPU, and nothing that reaches out of this machine on its own.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    chosen = os.environ.get("CHROMIUM")
    if chosen and not os.path.isfile(chosen):
        pytest.fail(f"CHROMIUM={chosen} is not a file; point it at a Chromium executable or unset it.")
    path = chosen or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("needs Chromium for the browser tests: apt-get install chromium (or set CHROMIUM=/path)")
    return path


def launch_chromium():
    """(playwright, browser); stop both with ``browser.close(); playwright.stop()``."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs Python's playwright for the browser tests: pip install playwright"
    )
    executable = chromium_path()
    playwright = sync_api.sync_playwright().start()
    try:
        return playwright, playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
    except Exception:
        playwright.stop()
        raise


class ComfyPage:
    """One tab on a ComfyUI server, recording what went wrong in it."""

    def __init__(self, browser, url: str, viewport: dict | None = None):
        self.url = url
        self.page = browser.new_page(viewport=viewport or {"width": 1600, "height": 1000})
        self.errors: list[str] = []  # uncaught exceptions, and console errors that name our extension
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error.stack or error}"))
        self.page.on("console", self._on_console)

    def _on_console(self, message) -> None:
        where = message.location.get("url", "") if message.location else ""
        if message.type == "error" and (EXTENSION_URL in where or "textual inversion" in message.text):
            self.errors.append(f"console: {message.text} ({where})")

    def open(self) -> None:
        self.page.goto(self.url)
        self.wait_until_ready()

    def reload(self) -> None:
        self.page.reload()
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        # The graph and the extensions exist seconds before the node types do: a workflow loaded in between
        # comes out as "missing nodes". So wait for the end of the app's setup (the page sets window.app after
        # every extension's setup hook), for the first workflow it opens (it would replace a graph loaded
        # before it), and for every node type the server defines (they register without being awaited).
        self.page.wait_for_function(
            "window.app !== undefined && window.app.extensionManager.workflow.activeWorkflow != null",
            timeout=120_000,
        )
        node_types = self.page.evaluate("async () => Object.keys(await window.comfyAPI.api.api.getNodeDefs())")
        self.page.wait_for_function(
            "types => types.every((type) => type in window.LiteGraph.registered_node_types)", arg=node_types
        )

    def evaluate(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def wait_for(self, script: str, arg=None, timeout: float = 600):
        return self.page.wait_for_function(script, arg=arg, timeout=timeout * 1000).json_value()

    def close(self) -> None:
        self.page.close()
