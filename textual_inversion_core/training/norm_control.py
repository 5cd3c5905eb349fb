"""Keeping the word's vectors the size of real words, so the word does not drown the rest of its prompt.

A learned vector free to grow soon has several times the norm of any word in the vocabulary; through the text
encoder's attention it then outweighs the words around it ("<my-cat> on a beach" shows the cat and no beach).
Two controls the trusted trainers use:

- ``rescale``: after every update each vector is scaled back to the vocabulary's median token norm, its
  direction left as the optimiser moved it (OneTrainer's ``preserve_embedding_norm``);
- ``penalty``: the loss gains ``weight * mean(((|v| - |v0|) / |v0|)^2)``, pulling each vector's norm towards the
  init word's (in the spirit of the paper's embedding regulariser), so a word may still grow where the pictures
  insist.
"""

from __future__ import annotations

import torch

NORM_CONTROLS = ("off", "rescale", "penalty")


def norm_penalty(params: dict[str, torch.Tensor], init_norms: dict[str, torch.Tensor], weight: float) -> torch.Tensor:
    """``weight`` times the mean squared relative distance of each vector's norm from its init norm."""
    terms = [((p.norm(dim=1) - init_norms[name]) / init_norms[name]).pow(2) for name, p in params.items()]
    return weight * torch.cat(terms).mean()


@torch.no_grad()
def rescale_to(params: dict[str, torch.Tensor], norms: dict[str, float]) -> None:
    """Scale every vector, in place, to the norm given for its encoder."""
    for name, p in params.items():
        p.mul_(norms[name] / p.norm(dim=1, keepdim=True).clamp(min=1e-12))


def norm_ratios(params: dict[str, torch.Tensor], medians: dict[str, float]) -> dict[str, list[float]]:
    """Each vector's norm as a multiple of its vocabulary's median token norm."""
    return {name: [round(float(n) / medians[name], 3) for n in p.detach().norm(dim=1)] for name, p in params.items()}
