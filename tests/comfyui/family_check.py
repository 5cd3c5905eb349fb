"""Train and apply a word on small ComfyUI models of one family, in ComfyUI's own Python; prints a JSON report.

Run as ``python family_check.py COMFYUI_PATH REPOSITORY FAMILY WORK_FOLDER`` with FAMILY ``sd2-v`` (SD2.x,
v-prediction) or ``sdxl`` (two text encoders, pooled and size conditioning). The models are ComfyUI's own
classes, built small (a narrow UNet, three-layer text encoders at their real widths) with random weights, under
``torch.inference_mode()`` as ComfyUI's loaders build them; the extension is imported as ComfyUI imports it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from comfyui_start import start_comfyui
from make_checkpoint import reset_weights

comfyui_path, repository, family, work = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
start_comfyui(comfyui_path, repository)
from extension_import import extension_module  # noqa: E402
import comfy.model_base  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.sdxl_clip  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.supported_models_base  # noqa: E402
import comfy.taesd.taesd  # noqa: E402
import comfy.text_encoders.sd2_clip  # noqa: E402

comfy_host = extension_module(repository, "nodes.comfy_host")
pseudo_words = extension_module(repository, "nodes.comfy_host.pseudo_words")
trainer = extension_module(repository, "textual_inversion_core.training")
data = extension_module(repository, "textual_inversion_core.data")
formats = extension_module(repository, "textual_inversion_core.formats")

SMALL_TEXT_ENCODER = {"num_hidden_layers": 3, "intermediate_size": 256}
FAMILIES = {
    "sd2-v": dict(
        config=comfy.supported_models.SD20, model=comfy.model_base.BaseModel,
        model_type=comfy.model_base.ModelType.V_PREDICTION, context_dim=1024, adm={},
        clip=comfy.supported_models_base.ClipTarget(comfy.text_encoders.sd2_clip.SD2Tokenizer,
                                                    comfy.text_encoders.sd2_clip.SD2ClipModel),
        encoders=("clip_h",),
    ),
    "sdxl": dict(
        config=comfy.supported_models.SDXL, model=comfy.model_base.SDXL,
        model_type=comfy.model_base.ModelType.EPS, context_dim=2048,
        adm=dict(adm_in_channels=2816, num_classes="sequential"),
        clip=comfy.supported_models_base.ClipTarget(comfy.sdxl_clip.SDXLTokenizer, comfy.sdxl_clip.SDXLClipModel),
        encoders=("clip_l", "clip_g"),
    ),
}


def build(settings: dict):
    torch.manual_seed(0)
    unet_config = dict(
        image_size=32, in_channels=4, out_channels=4, model_channels=64, num_res_blocks=1, channel_mult=[1],
        use_spatial_transformer=True, transformer_depth=[1], transformer_depth_middle=1,
        transformer_depth_output=[1, 1], context_dim=settings["context_dim"], use_linear_in_transformer=True,
        legacy=False, **settings["adm"],
    )
    model_config = settings["config"](unet_config)
    model_config.set_inference_dtype(torch.float32, None)
    base = settings["model"](model_config, model_type=settings["model_type"], device="cpu")
    reset_weights(base)
    model = comfy.model_patcher.ModelPatcher(base, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    options = {f"{name}_model_config": SMALL_TEXT_ENCODER for name in settings["encoders"]}
    clip = comfy.sd.CLIP(target=settings["clip"], embedding_directory=[str(work)], model_options=options)
    reset_weights(clip.cond_stage_model)
    taesd = comfy.taesd.taesd.TAESD()
    reset_weights(taesd)
    vae = comfy.sd.VAE(sd=taesd.state_dict())
    return model, clip, vae


def encode(clip, text: str):
    cond, pooled = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
    return cond, pooled


def main() -> None:
    with torch.inference_mode():  # as ComfyUI runs every node
        model, clip, vae = build(FAMILIES[family])
        before = encode(clip, "a photo of <thing>")
        frozen = comfy_host.frozen_model(model, clip, vae)
        pictures = [data.ConceptImage(torch.rand(3, 64, 64), "", str(i)) for i in range(3)]
        config = trainer.TrainingConfig(token="<thing>", init_text="thing", num_vectors=2, steps=2,
                                        learning_rate=0.05, seed=0)
        start = frozen.prompt_encoder.word_vectors("thing")
        with comfy_host.training_session(model, clip):
            result = trainer.train_embedding(frozen, pictures, config)
        word = result.embedding
        formats.save_embedding(word, work / "thing.safetensors")
        applied = encode(pseudo_words.clip_with_word(clip, word), "a photo of <thing>")
        native = encode(clip, "a photo of embedding:thing")
        after = encode(clip, "a photo of <thing>")
    report = {
        "family": family,
        "clip_family": pseudo_words.clip_family(clip),
        "prediction_type": frozen.denoiser.prediction_type,
        "moved": {name: float((word.vectors[name] - start[name][0]).abs().max()) for name in word.vectors},
        "applied_equals_native": all(torch.equal(a, b) for a, b in zip(applied, native) if a is not None),
        "pooled_present": applied[1] is not None,
        "applied_differs_from_plain": not torch.equal(applied[0], before[0]),
        "original_unchanged": all(torch.equal(a, b) for a, b in zip(before, after) if a is not None),
    }
    print(json.dumps(report))


main()
