"""The nodes' public interface as ComfyUI serves it: ids, names and inputs that shared workflow files rely on."""

import pytest

from examples import API_TWINS, EXAMPLES
from workflow_format import load, ui_to_api

pytestmark = pytest.mark.comfyui

CATEGORY = "textual inversion"

# node id -> (display name, required inputs, optional inputs, output names), as the issue specifies them.
NODES = {
    "TextualInversionLoadConceptImages": (
        "Load Concept Images", ["folder", "resolution", "crop"], [], ["images", "captions"]
    ),
    "TextualInversionTrainEmbedding": (
        "Train Embedding",
        ["model", "clip", "vae", "images", "token", "init_text", "num_vectors", "template", "steps",
         "learning_rate", "batch_size", "seed"],
        ["captions", "resume", "preview_every", "preview_prompt", "masks", "unmasked_weight", "norm_control",
         "norm_penalty", "preview_negative", "preview_cfg", "keep_previewed_words", "compile"],
        ["embedding", "loss_graph"],
    ),
    "TextualInversionApplyEmbedding": ("Apply Embedding", ["clip", "embedding"], ["token"], ["clip"]),
    "TextualInversionSaveEmbedding": ("Save Embedding", ["embedding", "filename_prefix"], [], []),
    "TextualInversionLoadEmbedding": ("Load Embedding", ["embedding_name"], ["token"], ["embedding"]),
    "TextualInversionEvaluateEmbedding": (
        "Evaluate Embedding", ["clip_vision", "concept_images", "generated", "init_generated"], [],
        ["similarity", "init_similarity", "report"],
    ),
    "TextualInversionTrainPivotalLora": (
        "Train Pivotal LoRA",
        ["model", "clip", "vae", "images", "embedding", "steps", "rank", "learning_rate", "template", "batch_size",
         "seed"],
        ["captions", "word_learning_rate", "layers", "masks", "preview_every", "preview_prompt", "preview_negative",
         "preview_cfg", "resume"],
        ["model", "clip", "pivotal_lora", "lora", "loss_graph"],
    ),
    "TextualInversionSavePivotalLora": ("Save Pivotal LoRA", ["pivotal_lora", "filename_prefix"], [], []),
    "TextualInversionLoadPivotalLora": (
        "Load Pivotal LoRA", ["model", "clip", "lora_name", "strength_model"], ["token"],
        ["model", "clip", "embedding", "pivotal_lora"],
    ),
}


@pytest.mark.parametrize("node_id", NODES)
def test_node_is_registered_with_its_specified_inputs_and_outputs(server, node_id):
    # Given ComfyUI running with this extension, when the frontend asks for the node definitions,
    info = server.get("/object_info")[node_id]
    display_name, required, optional, outputs = NODES[node_id]
    # then each node carries exactly the specified name, category, inputs (in order) and outputs.
    assert info["display_name"] == display_name
    assert info["category"] == CATEGORY
    assert list(info["input"]["required"]) == required
    assert list(info["input"].get("optional", {})) == optional
    assert info["output_name"] == outputs


def test_custom_socket_type_is_embedding(server):
    info = server.get("/object_info")
    assert info["TextualInversionTrainEmbedding"]["output"] == ["TEXTUAL_INVERSION_EMBEDDING", "IMAGE"]
    embedding_input = info["TextualInversionApplyEmbedding"]["input"]["required"]["embedding"]
    assert embedding_input[0] == "TEXTUAL_INVERSION_EMBEDDING"
    assert info["TextualInversionSaveEmbedding"]["output_node"] is True


def test_input_choices(server):
    info = server.get("/object_info")
    concept = info["TextualInversionLoadConceptImages"]["input"]["required"]
    assert concept["resolution"][1]["default"] == 512 and concept["resolution"][1]["step"] == 64
    assert concept["crop"][1]["options"] == ["center", "none"]
    train = info["TextualInversionTrainEmbedding"]["input"]["required"]
    assert train["template"][1]["options"] == ["object", "style", "captions"]
    assert (train["num_vectors"][1]["min"], train["num_vectors"][1]["max"]) == (1, 75)


@pytest.mark.parametrize("name", ["train_embedding", "use_embedding", "several_words", "pivotal_lora"])
def test_example_workflow_is_listed_as_a_template_and_matches_its_api_twin(server, name):
    # Given the UI-form example users drag in, and the API-form twin the other tests queue:
    templates = server.get("/workflow_templates")
    assert name in templates["comfyui-textual-inversion"]
    ui_form = load(EXAMPLES / f"{name}.json")
    # when the UI form is turned into a prompt as the frontend does it, with the server's node definitions,
    prompt = ui_to_api(ui_form, server.get("/object_info"))
    # then it is exactly the twin, so the tests exercise what users run.
    assert prompt == load(API_TWINS / f"{name}.api.json")
