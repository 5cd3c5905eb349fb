"""ComfyUI's own embedding loader (``comfy.sd1_clip.load_embed``) reads the files we write to the same tensors.

It runs in ComfyUI's Python (``COMFYUI_PYTHON``, else this one) with ``COMFYUI_PATH`` on its import path, and
hands back what it loaded as a safetensors file.
"""

import json
import os
import subprocess
import sys

import pytest
import safetensors.torch
import torch

from textual_inversion_core.embedding import Embedding
from textual_inversion_core.formats import save_embedding

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not COMFYUI_PATH, reason="COMFYUI_PATH is not set, so ComfyUI's embedding loader cannot run"),
]

# Runs inside ComfyUI's Python: argv = ComfyUI folder, JSON list of cases, output file.
LOAD_WITH_COMFYUI = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import comfy.cli_args
comfy.cli_args.args.cpu = True  # before comfy.model_management looks for a GPU
import comfy.sd1_clip
import safetensors.torch
import torch
loaded = {}
for index, case in enumerate(json.loads(sys.argv[2])):
    if case["name"].endswith((".pt", ".bin")):
        # ComfyUI's first try for pickles; if it failed, its fallback would guess the tensor from raw bytes.
        torch.load(case["folder"] + "/" + case["name"], weights_only=True, map_location="cpu")
    tensor = comfy.sd1_clip.load_embed(case["name"], [case["folder"]], case["size"], case["key"])
    if tensor is not None:
        loaded[str(index)] = tensor.float().contiguous()
safetensors.torch.save_file(loaded, sys.argv[3])
"""


def vectors(n: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


SD1 = Embedding("<my-cat>", {"clip_l": vectors(3, 768)}, {"init_text": "cat"})
SD2 = Embedding("<my-cat>", {"clip_h": vectors(2, 1024)})
SDXL = Embedding("<my-cat>", {"clip_l": vectors(2, 768), "clip_g": vectors(2, 1280, seed=1)})

# (embedding, file name, format, what ComfyUI's text encoders ask for: (width, key) per encoder)
CASES = [
    (SD1, "sd1.safetensors", "safetensors", [(768, "clip_l")]),
    (SD1, "sd1.pt", "a1111-pt", [(768, "clip_l")]),
    (SD1, "sd1-diffusers.safetensors", "diffusers", [(768, "clip_l")]),
    (SD1, "sd1-diffusers.bin", "diffusers", [(768, "clip_l")]),
    (SD2, "sd2.safetensors", "safetensors", [(1024, "clip_h")]),
    (SDXL, "sdxl.safetensors", "safetensors", [(768, "clip_l"), (1280, "clip_g")]),
    (SDXL, "sdxl.pt", "a1111-pt", [(768, "clip_l"), (1280, "clip_g")]),
]


def test_comfyui_reads_our_files_to_the_same_tensors(tmp_path):
    # Given our files in every format ComfyUI reads (it has no picture reader)
    folder = tmp_path / "embeddings"
    requests, expected = [], []
    for embedding, name, format, encoders in CASES:
        save_embedding(embedding, folder / name, format=format)
        for (size, key), tensor in zip(encoders, embedding.vectors.values()):
            requests.append({"name": name, "folder": str(folder), "size": size, "key": key})
            expected.append((f"{name} for {key}", tensor))
    # When ComfyUI's loader reads each, asking as its SD1/SD2/SDXL text encoders do
    out = tmp_path / "loaded.safetensors"
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    run = subprocess.run([python, "-c", LOAD_WITH_COMFYUI, COMFYUI_PATH, json.dumps(requests), str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = safetensors.torch.load_file(out)
    # Then it gets exactly our vectors for every encoder
    for index, (what, tensor) in enumerate(expected):
        assert str(index) in loaded, f"ComfyUI could not load {what}:\n{run.stderr[-3000:]}"
        assert torch.equal(loaded[str(index)], tensor), what
