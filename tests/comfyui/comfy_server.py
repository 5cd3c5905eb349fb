"""A real ComfyUI server for the tests: started on a free loopback port, everything it writes in a temp folder.

``--base-directory`` points models, input, output, temp, user and custom_nodes at that folder; this checkout is
linked into its custom_nodes as the extension; the database lives in memory. Nothing is written into the ComfyUI
installation itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from websocket_listener import WebSocketListener

EXTENSION_NAME = "comfyui-textual-inversion"
REPOSITORY = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_check_script(script: str, *arguments) -> dict:
    """Run a check script of this folder in ComfyUI's Python, given ComfyUI's folder, this checkout and
    ``arguments``; its report is the JSON on its last line. Skips the test when no ComfyUI is set."""
    comfyui_path, python = installed_comfyui()
    finished = subprocess.run([python, str(Path(__file__).with_name(script)), str(comfyui_path), str(REPOSITORY),
                               *map(str, arguments)], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-6000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def installed_comfyui() -> tuple[Path, str]:
    """ComfyUI's folder and Python from COMFYUI_PATH / COMFYUI_PYTHON; skips the test when they are not set."""
    path, python = os.environ.get("COMFYUI_PATH"), os.environ.get("COMFYUI_PYTHON")
    if not path or not python:
        pytest.skip(
            "needs a real ComfyUI: set COMFYUI_PATH (its source folder) and COMFYUI_PYTHON (a Python with its "
            "requirements and this project's), e.g. as printed by shared/comfyui/prepare.sh"
        )
    if not (Path(path) / "main.py").is_file():
        pytest.fail(f"COMFYUI_PATH={path} holds no ComfyUI (no main.py there).")
    return Path(path), python


class ComfyServer:
    def __init__(self, comfyui_path: Path, python: str, base: Path):
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = uuid.uuid4().hex
        for name in ("input", "output", "temp", "user", "custom_nodes", "models/checkpoints", "models/embeddings",
                     "models/loras"):
            (base / name).mkdir(parents=True, exist_ok=True)
        (base / "custom_nodes" / EXTENSION_NAME).symlink_to(REPOSITORY, target_is_directory=True)
        self.log_path = base / "server.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                "--disable-auto-launch", "--base-directory", str(base), "--database-url", "sqlite:///:memory:",
            ],
            cwd=comfyui_path, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.messages: WebSocketListener | None = None

    @property
    def checkpoints(self) -> Path:
        return self.base / "models" / "checkpoints"

    @property
    def embeddings(self) -> Path:
        return self.base / "models" / "embeddings"

    @property
    def loras(self) -> Path:
        return self.base / "models" / "loras"

    @property
    def input(self) -> Path:
        return self.base / "input"

    @property
    def output(self) -> Path:
        return self.base / "output"

    def log_tail(self, characters: int = 6000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-characters:]

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.get("/system_stats")
            except OSError:  # not listening yet
                time.sleep(0.5)
                continue
            self.messages = WebSocketListener("127.0.0.1", self.port, f"/ws?clientId={self.client_id}")
            return
        raise TimeoutError(f"ComfyUI did not start within {timeout} s:\n{self.log_tail()}")

    def request(self, path: str, body: dict | None = None) -> bytes:
        """GET ``path``, or POST ``body`` as JSON to it; returns the response body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def get(self, path: str):
        return json.loads(self.request(path))

    def queue(self, prompt: dict) -> str:
        try:
            answer = self.request("/prompt", {"prompt": prompt, "client_id": self.client_id})
        except urllib.error.HTTPError as error:
            raise AssertionError(f"/prompt refused the workflow ({error.code}): {error.read().decode()}") from None
        return json.loads(answer)["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 600) -> dict:
        """The prompt's /history entry once it has finished (successfully or not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                entry = history[prompt_id]
                if entry["status"]["status_str"] in ("success", "error"):
                    return entry
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited while running {prompt_id}:\n{self.log_tail()}")
            time.sleep(0.25)
        raise TimeoutError(f"{prompt_id} did not finish within {timeout} s:\n{self.log_tail()}")

    def run(self, prompt: dict, timeout: float = 600) -> dict:
        """Queue ``prompt``, wait for it, and fail with ComfyUI's own error report unless it succeeded."""
        entry = self.wait(self.queue(prompt), timeout)
        if entry["status"]["status_str"] != "success":
            raise AssertionError(
                f"The workflow failed: {json.dumps(entry['status']['messages'], indent=1)[-4000:]}\n"
                f"Server log:\n{self.log_tail()}"
            )
        return entry

    @staticmethod
    def execution_error(entry: dict) -> dict:
        """The ``execution_error`` message of a /history entry that ended in one."""
        [error] = [message for kind, message in entry["status"]["messages"] if kind == "execution_error"]
        return error

    def pictures(self, entry: dict, node_id: str) -> list[bytes]:
        """The files of the pictures node ``node_id`` showed in a finished prompt (its /history entry), as /view
        serves them."""
        return [
            self.request(f"/view?{urllib.parse.urlencode(picture)}") for picture in entry["outputs"][node_id]["images"]
        ]

    def interrupt(self) -> None:
        self.request("/interrupt", {})

    def stop(self) -> None:
        if self.messages is not None:
            self.messages.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
