"""Train a word and then a pivotal LoRA through the ComfyUI host on a small SD1 MODEL, write the file, and apply
it the ways ComfyUI applies LoRAs and embeddings; prints a JSON report.

Run as ``python pivotal_lora_check.py COMFYUI_PATH REPOSITORY`` in ComfyUI's Python.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from comfyui_start import start_comfyui

comfyui_path, repository = sys.argv[1], Path(sys.argv[2])
start_comfyui(comfyui_path, repository)
import comfy.model_management  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.sd1_clip  # noqa: E402
import comfy.utils  # noqa: E402

from extension_import import extension_module  # noqa: E402
from small_sd1 import build_sd1, noise_pictures  # noqa: E402

comfy_host = extension_module(repository, "nodes.comfy_host")
adapted = extension_module(repository, "nodes.comfy_host.adapted_model")
training = extension_module(repository, "textual_inversion_core.training")
data = extension_module(repository, "textual_inversion_core.data")
lora_module = extension_module(repository, "textual_inversion_core.lora")
files = extension_module(repository, "textual_inversion_core.formats.pivotal_lora")


def unet_output(model) -> torch.Tensor:
    """The MODEL's diffusion network on fixed inputs, with whatever patches ComfyUI has put on its weights."""
    comfy.model_management.load_models_gpu([model])
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 8, 8, generator=generator)
    context = torch.randn(1, 77, 768, generator=generator)
    with torch.no_grad():
        return model.model.diffusion_model(x, torch.tensor([500.0]), context=context).float().clone()


def text_output(clip) -> torch.Tensor:
    """The CLIP's conditioning for a fixed prompt, with whatever patches ComfyUI has put on its weights."""
    with torch.no_grad():
        return clip.encode_from_tokens(clip.tokenize("a photo of a thing")).float().clone()


def main() -> None:
    pictures = noise_pictures(data)
    model, clip, vae = build_sd1()
    with torch.inference_mode():  # the nodes' own mode
        base_before = {k: v.clone() for k, v in model.model.diffusion_model.state_dict().items()}
        plain = unet_output(model)
        frozen = comfy_host.frozen_model(model, clip, vae)
        word_config = training.TrainingConfig(token="<thing>", init_text="thing", steps=2, learning_rate=0.05)
        lora_config = training.TrainingConfig(token="<thing>", init_text="thing", steps=2, lora_steps=3,
                                              lora_learning_rate=0.05)
        with comfy_host.training_session(model, clip):
            word = training.train_embedding(frozen, pictures, word_config).embedding
            lora = training.train_embedding(frozen, pictures, lora_config, resume=word).lora
            # What training computed: the adapter's hooks on the same layers.
            adapter = lora_module.LowRankAdapter.restored(lora_module.model_layers(frozen), lora.weights,
                                                          torch.device("cpu"))
            with adapter.attached():
                trained = unet_output(model)
            # And a LoRA on the text encoder's attention too.
            text_config = training.TrainingConfig(token="<thing>", init_text="thing", steps=2, lora_steps=3,
                                                  lora_learning_rate=0.05, lora_layers="attention+text_encoder")
            text_lora = training.train_embedding(frozen, pictures, text_config, resume=word).lora
        plain_text = text_output(clip)
        with lora_module.LowRankAdapter.restored(lora_module.model_layers(frozen), text_lora.weights,
                                                 torch.device("cpu")).attached():
            trained_text = text_output(clip)
        _, node_clip = adapted.adapted(model, clip, text_lora)
        from_node_text = text_output(node_clip)
        base_after = model.model.diffusion_model.state_dict()
        untouched = all(torch.equal(base_before[k], base_after[k]) for k in base_before)
        after_training = unet_output(model)

        # The node's MODEL: ComfyUI's own LoRA patches on a clone.
        node_model, _ = adapted.adapted(model, clip, lora)
        from_node = unet_output(node_model)
        with tempfile.TemporaryDirectory() as folder:
            path = files.save_pivotal_lora(lora, Path(folder) / "thing")
            # ComfyUI's Load LoRA, as its node does it: the file, then load_lora_for_models.
            state = comfy.utils.load_torch_file(str(path), safe_load=True)
            loader_model, _ = comfy.sd.load_lora_for_models(model, clip, state, 1.0, 0.0)
            from_loader = unet_output(loader_model)
            patched_layers = len(loader_model.patches)
            # ComfyUI's embedding loader on the same file, as "embedding:thing" reads it from an embeddings folder.
            bundled = comfy.sd1_clip.load_embed("thing", [folder], 768, "clip_l")
    print(json.dumps({
        "adapted_layers": len(lora.layer_names()),
        "patched_layers": patched_layers,
        "base_weights_untouched": untouched,
        "hooks_gone_after_training": torch.equal(after_training, plain),
        "adapter_changes_the_output": (trained - plain).abs().max().item(),
        "node_model_vs_training": (from_node - trained).abs().max().item(),
        "comfy_lora_loader_vs_training": (from_loader - trained).abs().max().item(),
        "output_scale": trained.abs().max().item(),
        "bundled_word_vs_trained": (bundled.float() - lora.embedding.vectors["clip_l"]).abs().max().item(),
        "word_unchanged_by_lora_stage": torch.equal(lora.embedding.vectors["clip_l"], word.vectors["clip_l"]),
        "text_layers_adapted": sum(name.startswith("lora_te_") for name in text_lora.layer_names()),
        "text_adapter_changes_the_output": (trained_text - plain_text).abs().max().item(),
        "node_clip_vs_training": (from_node_text - trained_text).abs().max().item(),
        "text_output_scale": trained_text.abs().max().item(),
    }))


main()
