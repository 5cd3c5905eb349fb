"""What a user sees when a workflow cannot run: settings that cannot work are refused when the prompt is queued,
before any model loads, and an error names itself shortly (not by the custom node folder's path) with the reason."""

import json
import urllib.error

import pytest

from examples import example_prompt
from workflow_format import node_of

pytestmark = pytest.mark.comfyui


def refusal(server, prompt: dict) -> dict:
    """ComfyUI's answer to a prompt it refuses to queue; fails if it queues it."""
    try:
        server.request("/prompt", {"prompt": prompt, "client_id": server.client_id})
    except urllib.error.HTTPError as error:
        assert error.code == 400
        return json.loads(error.read())
    raise AssertionError("the prompt was queued, not refused")


def training_prompt(nodes, **settings) -> tuple[dict, dict]:
    prompt = example_prompt("train_embedding")
    train = node_of(prompt, nodes["Train Embedding"])["inputs"]
    train.update({"steps": 2, "preview_every": 0, **settings})
    return prompt, train


@pytest.mark.parametrize("field, value, reason", [
    ("token", "my cat", "token must be a single word"),
    ("init_text", "  ", "init_text must name a coarse word"),
    ("num_vectors", 70, "num_vectors 70 does not fit the object template"),
    ("steps", 0, "steps must be at least 1"),
    ("learning_rate", 0.0, "learning rate '0.0' must be a positive number"),
])
def test_train_embedding_refuses_settings_that_cannot_work_when_queued(server, nodes, field, value, reason):
    # Given the example training workflow with one setting that cannot work,
    prompt, _ = training_prompt(nodes, **{field: value})
    # when it is queued, then ComfyUI refuses it before running anything, with the reason naming the field.
    answer = refusal(server, prompt)
    assert answer["error"]["type"] == "prompt_outputs_failed_validation"
    [train_id] = [k for k, node in prompt.items() if node["class_type"] == nodes["Train Embedding"]]
    errors = answer["node_errors"][train_id]["errors"]
    assert errors and all(reason in error["details"] for error in errors)


def test_a_linked_setting_is_checked_when_the_node_runs_and_the_others_when_queued(server, nodes):
    # Given the token fed by a String node, whose value ComfyUI does not know before running it,
    prompt, train = training_prompt(nodes, num_vectors=70)
    prompt["99"] = {"class_type": "PrimitiveString", "inputs": {"value": "my cat"}}
    train["token"] = ["99", 0]
    # then the settings on the node itself are still checked when queued,
    [errors] = [node["errors"] for node in refusal(server, prompt)["node_errors"].values()]
    assert errors and all("num_vectors 70 does not fit" in error["details"] for error in errors)
    # and the linked one when the node runs, before training, titled by its short name.
    train["num_vectors"] = 1
    entry = server.wait(server.queue(prompt))
    error = server.execution_error(entry)
    assert error["node_type"] == nodes["Train Embedding"]
    assert error["exception_type"] == "textual_inversion_core.errors.ConfigError"
    assert "token must be a single word such as '<my-cat>', got 'my cat'" in error["exception_message"]


def test_an_error_is_titled_by_its_short_name_with_the_message(server, nodes):
    # Given Load Concept Images pointed at a folder that is not there,
    prompt = {
        "1": {"class_type": nodes["Load Concept Images"],
              "inputs": {"folder": "no-such-folder", "resolution": 64, "crop": "center"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    # when the workflow runs,
    entry = server.wait(server.queue(prompt))
    # then the error ComfyUI reports is titled by the error's place in this project, not by the custom node
    # folder's absolute path, and the message says what to do.
    error = server.execution_error(entry)
    assert error["exception_type"] == "textual_inversion_core.data.ConceptDataError"
    assert "There is no folder 'no-such-folder' in ComfyUI's input directory" in error["exception_message"]
