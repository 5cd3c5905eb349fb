"""Low-rank adapters (LoRA, Hu et al. 2021) on a frozen model's linear layers: the UNet's, and optionally the
text encoders'.

Each adapted layer ``y = W x`` gains ``(alpha / rank) · up(down(x))`` through a forward hook: the base weights
are never written, so they stay bit-identical and the host's own weight handling (ComfyUI's patches, offloading,
half-precision copies) is left alone. ``up`` starts at zero, so an adapter that has not trained yet changes
nothing. Weights are kept and written in the kohya layout every LoRA loader reads:
``<layer>.lora_down.weight`` ``[rank, in]``, ``.lora_up.weight`` ``[out, rank]`` and ``.alpha``, with
``<layer>`` ``lora_unet_`` and the diffusers UNet's module path, or ``lora_te_`` (SDXL: ``lora_te1_``,
``lora_te2_``) and the transformers text encoder's, dots as underscores.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Mapping

import torch

from ..errors import ConfigError, UserError

KOHYA_UNET_PREFIX = "lora_unet_"
KOHYA_TEXT_PREFIXES = ("lora_te_", "lora_te1_", "lora_te2_")
# The layers adapted, by the end of their kohya names: the UNet's transformer blocks, the text encoders' layers.
_UNET_ATTENTION = ("_to_q", "_to_k", "_to_v", "_to_out_0")
_UNET_FEED_FORWARD = ("_ff_net_0_proj", "_ff_net_2")
_TEXT_ATTENTION = ("_self_attn_q_proj", "_self_attn_k_proj", "_self_attn_v_proj", "_self_attn_out_proj")
LAYER_SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "attention": {"unet": _UNET_ATTENTION},
    "attention+feedforward": {"unet": _UNET_ATTENTION + _UNET_FEED_FORWARD},
    "attention+text_encoder": {"unet": _UNET_ATTENTION, "text": _TEXT_ATTENTION},
}


class AdapterError(UserError):
    """Adapter weights that do not fit the model they are applied to."""


def kohya_name(module_path: str) -> str:
    return KOHYA_UNET_PREFIX + module_path.replace(".", "_")


def text_encoder_prefix(index: int, count: int) -> str:
    """kohya's prefix for a model's ``index``-th of ``count`` text encoders."""
    return "lora_te_" if count == 1 else f"lora_te{index + 1}_"


def model_layers(model) -> dict[str, torch.nn.Module]:
    """Every layer a ``FrozenModel``'s hosts offer an adapter, by kohya name: the UNet's and the text encoders'."""
    layers = {kohya_name(path): module for path, module in model.denoiser.adaptable_layers().items()}
    layers.update(model.prompt_encoder.adaptable_layers())
    return layers


def select_layers(layers: Mapping[str, torch.nn.Module], layer_set: str) -> dict[str, torch.nn.Module]:
    """The layers (``model_layers``) that ``layer_set`` adapts."""
    if layer_set not in LAYER_SETS:
        raise ConfigError(f"lora_layers must be one of {', '.join(LAYER_SETS)}, got {layer_set!r}.")
    wanted = LAYER_SETS[layer_set]
    chosen = {name: module for name, module in layers.items()
              if (name.startswith(KOHYA_UNET_PREFIX) and name.endswith(wanted["unet"]))
              or (name.startswith(KOHYA_TEXT_PREFIXES) and name.endswith(wanted.get("text", ())))}
    if not chosen:
        raise AdapterError("This model has no attention layers to adapt; pivotal tuning needs a cross-attention UNet.")
    return chosen


class LowRankAdapter:
    """Trainable ``down``/``up`` pairs for the layers named, on ``device``; ``attached()`` makes them act."""

    def __init__(self, layers: Mapping[str, torch.nn.Module], rank: int, alpha: float, device: torch.device,
                 seed: int = 0, weights: Mapping[str, torch.Tensor] | None = None):
        self.layers, self.rank, self.alpha = dict(layers), rank, float(alpha)
        generator = torch.Generator().manual_seed(seed)
        self.down: dict[str, torch.nn.Parameter] = {}
        self.up: dict[str, torch.nn.Parameter] = {}
        for name, layer in self.layers.items():
            down = torch.empty(rank, layer.in_features)
            # kohya's and PEFT's initialisation: down as nn.Linear's default, up zero.
            bound = 1 / math.sqrt(layer.in_features)
            down.uniform_(-bound, bound, generator=generator)
            up = torch.zeros(layer.out_features, rank)
            if weights is not None:
                down, up = self._stored(weights, name, layer)
            self.down[name] = torch.nn.Parameter(down.to(device, torch.float32))
            self.up[name] = torch.nn.Parameter(up.to(device, torch.float32))

    @classmethod
    def restored(cls, layers: Mapping[str, torch.nn.Module], weights: Mapping[str, torch.Tensor],
                 device: torch.device) -> "LowRankAdapter":
        """The adapter ``weights`` (kohya layout) hold, on the host's ``layers`` (``model_layers``), with their
        own rank and alpha."""
        names = sorted(k[:-len(".lora_down.weight")] for k in weights if k.endswith(".lora_down.weight"))
        by_name = dict(layers)
        missing = [name for name in names if name not in by_name]
        if not names or missing:
            raise AdapterError(f"The adapter's layers {', '.join(missing[:3]) or '(none)'} are not in this model; "
                               "it was trained for another model.")
        rank = weights[f"{names[0]}.lora_down.weight"].shape[0]
        alpha = float(weights.get(f"{names[0]}.alpha", torch.tensor(float(rank))))
        return cls({name: by_name[name] for name in names}, rank, alpha, device, weights=weights)

    def _stored(self, weights: Mapping[str, torch.Tensor], name: str, layer) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            down, up = weights[f"{name}.lora_down.weight"], weights[f"{name}.lora_up.weight"]
        except KeyError:
            raise AdapterError(f"The adapter has no weights for {name}; it was trained on other layers. Train it "
                               "again with these layer settings, or choose the settings it was trained with.") from None
        expected = ((self.rank, layer.in_features), (layer.out_features, self.rank))
        if (tuple(down.shape), tuple(up.shape)) != expected:
            raise AdapterError(f"The adapter's weights for {name} are {tuple(down.shape)} and {tuple(up.shape)}; "
                               f"this model's layer needs {expected[0]} and {expected[1]} (rank {self.rank}). It was "
                               "trained for another model.")
        return down.float(), up.float()

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def parameters(self) -> list[torch.nn.Parameter]:
        return [*self.down.values(), *self.up.values()]

    @contextlib.contextmanager
    def attached(self) -> Iterator[None]:
        """The layers compute ``W x + scale · up(down(x))`` until the block exits."""
        handles = [layer.register_forward_hook(self._hook(name)) for name, layer in self.layers.items()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, name: str):
        down, up, scale = self.down[name], self.up[name], self.scale

        def add_low_rank_update(module, inputs, output):
            x = inputs[0]
            # In the layer's compute dtype: a half-precision forward pass stays half precision. The scale goes
            # into the small up matrix, and the update into the layer's own fresh output (which its backward
            # does not need), so no other tensor the size of that output is made, forward or backward.
            delta = torch.nn.functional.linear(torch.nn.functional.linear(x, down.to(x.dtype)),
                                               (scale * up).to(x.dtype))
            return output.add_(delta.to(output.dtype))

        return add_low_rank_update

    def copy(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The weights as they are now, on their device: cheap to take every step, as ``state_dict`` is not."""
        return {name: (self.down[name].detach().clone(), self.up[name].detach().clone()) for name in self.layers}

    def state_dict(self, copy: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, torch.Tensor]:
        """The weights (or those of an earlier ``copy``) in the kohya layout, float32 on the CPU."""
        pairs = copy if copy is not None else {name: (self.down[name], self.up[name]) for name in self.layers}
        state = {}
        for name, (down, up) in pairs.items():
            state[f"{name}.lora_down.weight"] = down.detach().float().cpu().clone()
            state[f"{name}.lora_up.weight"] = up.detach().float().cpu().clone()
            state[f"{name}.alpha"] = torch.tensor(self.alpha)
        return state
