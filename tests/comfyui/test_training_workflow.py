"""Training inside a running ComfyUI, as a user does it: the example workflows queued through /prompt."""

import time

import pytest
import safetensors.torch
import torch

from examples import CHECKPOINT, example_prompt
from sampling import Graph
from textual_inversion_core.embedding import Embedding
from textual_inversion_core.formats import save_embedding
from workflow_format import node_of

pytestmark = pytest.mark.comfyui


def test_training_saves_the_word_where_comfyui_finds_it(server, trained_word):
    # Given the example training workflow has run (load pictures -> train -> save, and a picture made with
    # the new word through Apply Embedding),
    prompt, prompt_id, entry = trained_word
    outputs = entry["outputs"]
    save_id = next(k for k, node in prompt.items() if node["class_type"] == "TextualInversionSaveEmbedding")
    # then the embedding file is in the embeddings folder, the node shows where, and /embeddings lists it,
    assert (server.embeddings / "my-cat.safetensors").is_file()
    assert outputs[save_id]["text"] == ["embeddings/my-cat.safetensors"]
    assert "my-cat" in server.get("/embeddings")
    # and the loss graph and the picture made with the new word were produced.
    image_ids = [k for k, node in prompt.items() if node["class_type"] in ("PreviewImage", "SaveImage")]
    assert all(outputs[k]["images"] for k in image_ids)


def test_training_reports_progress_previews_and_completion(server, trained_word):
    prompt, prompt_id, _ = trained_word
    train_id = next(k for k, node in prompt.items() if node["class_type"] == "TextualInversionTrainEmbedding")
    messages = server.messages
    ours = lambda kind: [m for m in messages.of_type(kind) if m["prompt_id"] == prompt_id]  # noqa: E731
    # ComfyUI's own progress bar counts the steps on the Train Embedding node,
    bar = [m for m in messages.of_type("progress") if m["prompt_id"] == prompt_id and m["node"] == train_id]
    assert sorted({m["value"] for m in bar}) == [1, 2, 3] and {m["max"] for m in bar} == {3}
    # one textual_inversion.progress message per step carries the loss curve's data,
    progress = ours("textual_inversion.progress")
    assert [m["step"] for m in progress] == [1, 2, 3]
    for m in progress:
        assert m["node"] == train_id and m["total"] == 3
        assert {"loss", "lr", "elapsed", "eta"} <= m.keys() and m["lr"] == pytest.approx(0.005)
    # the preview (every 2 steps) is a picture the server serves from its temp folder,
    [preview] = ours("textual_inversion.preview")
    assert preview["step"] == 2 and preview["image"]["type"] == "temp"
    image = server.request(f"/view?filename={preview['image']['filename']}&subfolder={preview['image']['subfolder']}&type=temp")
    assert image.startswith(b"\x89PNG")
    # shown once, on the node's panel: no copy comes through ComfyUI's progress-bar preview (the tests' server
    # samples without latent previews, so no other picture comes as a binary frame either),
    assert messages.binary_frames == 0
    # and a final message says how it ended.
    [done] = ours("textual_inversion.done")
    assert done == {**done, "node": train_id, "steps": 3, "total": 3, "stopped": False, "saved": None}
    assert done["final_loss"] == progress[-1]["loss"]


def test_use_workflow_samples_with_the_saved_word(server, trained_word):
    # Given the word saved by the training workflow, when the example "use" workflow loads and applies it,
    entry = server.run(example_prompt("use_embedding"))
    # then it renders its picture.
    [images] = [output["images"] for output in entry["outputs"].values() if "images" in output]
    assert (server.output / images[0]["subfolder"] / images[0]["filename"]).is_file()


def test_several_words_workflow_uses_both_words_in_one_prompt(server, trained_word):
    # Given the word <my-cat> saved by the training workflow and a second word, <my-style>, beside it,
    style = torch.randn(2, 768, generator=torch.Generator().manual_seed(1))
    save_embedding(Embedding("<my-style>", {"clip_l": style}), server.embeddings / "my-style.safetensors")
    # when the example "several words" workflow runs, and beside it the same prompt is sampled on the
    # checkpoint's own CLIP with ComfyUI's embedding:<file> for both words,
    prompt = example_prompt("several_words")
    sampler = node_of(prompt, "KSampler")["inputs"]
    positive, negative = (prompt[sampler[name][0]]["inputs"]["text"] for name in ("positive", "negative"))
    assert "<my-cat>" in positive and "<my-style>" in positive
    native = positive.replace("<my-cat>", "embedding:my-cat").replace("<my-style>", "embedding:my-style")
    plain_clip = [next(k for k, n in prompt.items() if n["class_type"] == "CheckpointLoaderSimple"), 1]
    prompt.update({
        "101": {"class_type": "CLIPTextEncode", "inputs": {"clip": plain_clip, "text": native}},
        "102": {"class_type": "CLIPTextEncode", "inputs": {"clip": plain_clip, "text": negative}},
        "103": {"class_type": "KSampler", "inputs": {**sampler, "positive": ["101", 0], "negative": ["102", 0]}},
        "104": {"class_type": "SaveLatent", "inputs": {"samples": ["103", 0], "filename_prefix": "latents/native"}},
        "105": {"class_type": "SaveLatent", "inputs": {
            "samples": [next(k for k, n in prompt.items() if n["class_type"] == "KSampler"), 0],
            "filename_prefix": "latents/several-words"}},
        "106": {"class_type": "CLIPTextEncode", "inputs": {"clip": plain_clip, "text": positive}},
        "107": {"class_type": "KSampler", "inputs": {**sampler, "positive": ["106", 0], "negative": ["102", 0]}},
        "108": {"class_type": "SaveLatent", "inputs": {"samples": ["107", 0], "filename_prefix": "latents/plain"}},
    })
    entry = server.run(prompt)
    # then the example's picture is exactly what the two files make through ComfyUI's own syntax,
    example, through_files, plain = (latent(server, entry, key) for key in ("105", "104", "108"))
    assert torch.equal(example, through_files)
    # and not what the words make as plain text on a CLIP that was never taught them.
    assert not torch.equal(example, plain)


def latent(server, entry: dict, save_latent_id: str) -> torch.Tensor:
    found = entry["outputs"][save_latent_id]["latents"][0]
    return safetensors.torch.load_file(server.output / found["subfolder"] / found["filename"])["latent_tensor"]


def test_stop_button_ends_training_keeps_the_word_so_far_and_the_server_serves_on(server, trained_word):
    # Given a long training is running,
    prompt = example_prompt("train_embedding")
    train = node_of(prompt, "TextualInversionTrainEmbedding")["inputs"]
    train.update(token="<stop-me>", steps=1000, preview_every=0)
    prompt_id = server.queue(prompt)
    server.messages.wait_for("textual_inversion.progress", lambda m: m["prompt_id"] == prompt_id)
    # when the user presses stop,
    started = time.monotonic()
    server.interrupt()
    entry = server.wait(prompt_id, timeout=120)
    # then the prompt ends as interrupted (not as an error) soon after,
    assert time.monotonic() - started < 60
    kinds = [message[0] for message in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds and "execution_error" not in kinds
    # the word learned so far is kept in the embeddings folder and the final message says where,
    done = server.messages.wait_for("textual_inversion.done", lambda m: m["prompt_id"] == prompt_id)
    assert done["stopped"] is True and 1 <= done["steps"] < 1000
    assert done["saved"] == f"embeddings/stop-me_step{done['steps']}.safetensors"
    assert (server.embeddings / f"stop-me_step{done['steps']}.safetensors").is_file()
    # and the server goes on serving prompts.
    graph = Graph(CHECKPOINT)
    graph.sample(graph.clip, "a photo after the stop")
    graph.run(server)


def test_a_second_training_in_the_same_server_works(server, trained_word):
    # Given one training has already run in this server, when another word is trained,
    prompt = example_prompt("train_embedding")
    train = node_of(prompt, "TextualInversionTrainEmbedding")["inputs"]
    train.update(token="<my-dog>", init_text="dog", steps=2, preview_every=0)
    server.run(prompt)
    # then it is saved beside the first.
    assert (server.embeddings / "my-dog.safetensors").is_file()
    assert {"my-cat", "my-dog"} <= set(server.get("/embeddings"))


def test_the_pivotal_example_saves_one_lora_file_that_load_pivotal_lora_applies(server, trained_word):
    # Given the pivotal example, scaled down: a word for 2 steps, then a LoRA around it for 3
    prompt = example_prompt("pivotal_lora")
    node_of(prompt, "TextualInversionTrainEmbedding")["inputs"].update(token="<my-pivot>", steps=2, preview_every=0)
    node_of(prompt, "TextualInversionTrainPivotalLora")["inputs"].update(steps=3, preview_every=0)
    prompt_id = server.queue(prompt)
    entry = server.wait(prompt_id)
    # When it has run, then the word and its LoRA are one file in the loras folder, and the node says where,
    save_id = next(k for k, node in prompt.items() if node["class_type"] == "TextualInversionSavePivotalLora")
    assert (server.loras / "my-pivot.safetensors").is_file()
    assert entry["outputs"][save_id]["text"] == ["loras/my-pivot.safetensors"]
    # the Train Pivotal LoRA node's panel heard steps 3-5 of 5 (the word's two, then the LoRA's three),
    pivotal_id = next(k for k, node in prompt.items() if node["class_type"] == "TextualInversionTrainPivotalLora")
    steps = [m["step"] for m in server.messages.of_type("textual_inversion.progress")
             if m["prompt_id"] == prompt_id and m["node"] == pivotal_id]
    assert steps == [3, 4, 5]
    # and Load Pivotal LoRA applies both halves: with the LoRA the word's picture differs from without it.
    pictures = {}
    for strength in (0.0, 1.0):
        graph = Graph(CHECKPOINT)
        load = graph.add("TextualInversionLoadPivotalLora", model=graph.model, clip=graph.clip,
                         lora_name="my-pivot.safetensors", strength_model=strength)
        graph.model = [load, 0]
        graph.sample([load, 1], "a photo of <my-pivot>")
        [pictures[strength]] = graph.run(server).values()
    assert not torch.equal(pictures[0.0], pictures[1.0])
