"""The base-model families, in one table: their text encoders, names, widths and latent geometry.

Every check of "does this embedding, CLIP or folder belong to that family" reads this table, so the answer and
the wording are the same in the file readers, both hosts and the nodes.
"""

from __future__ import annotations

import dataclasses

from .errors import UserError

# Text encoders by the name every file format and host agrees on, with their token-embedding width.
ENCODER_WIDTHS: dict[str, int] = {"clip_l": 768, "clip_h": 1024, "clip_g": 1280}
ENCODER_BY_WIDTH: dict[int, str] = {width: name for name, width in ENCODER_WIDTHS.items()}

# A CLIP prompt holds 75 tokens between its start and end markers; a word longer than that can never be used.
MAX_VECTORS = 75

# Every family's VAE maps 8×8 pixels to one latent.
LATENT_FACTOR = 8


@dataclasses.dataclass(frozen=True)
class Family:
    key: str  # "sd1", as stored in files' metadata and used in code
    display_name: str  # "SD1", in every message
    encoders: tuple[str, ...]  # the text encoders it conditions on, in the order their outputs are concatenated
    resolution: int  # the square size it was trained at, in pixels

    @property
    def context_width(self) -> int:
        """The width of the cross-attention context: the encoders' widths side by side."""
        return sum(ENCODER_WIDTHS[name] for name in self.encoders)


FAMILIES: dict[str, Family] = {
    family.key: family
    for family in (
        Family("sd1", "SD1", ("clip_l",), 512),
        Family("sd2", "SD2", ("clip_h",), 768),
        Family("sdxl", "SDXL", ("clip_l", "clip_g"), 1024),
    )
}

# Which encoders each family conditions on (the table's encoders, by key).
FAMILY_ENCODERS: dict[str, tuple[str, ...]] = {key: family.encoders for key, family in FAMILIES.items()}


def family_of(encoder_names) -> str | None:
    """The family whose text encoders are exactly these, or None if no family matches."""
    names = set(encoder_names)
    return next((key for key, family in FAMILIES.items() if set(family.encoders) == names), None)


def display_name(family: str | None) -> str:
    return FAMILIES[family].display_name if family in FAMILIES else "another model"


def get_family(key: str) -> Family:
    """The family ``key``; a clear error for an unknown one."""
    if key not in FAMILIES:
        raise UserError(f"Unknown model family {key!r}; choose one of {', '.join(FAMILIES)}.")
    return FAMILIES[key]


def family_of_single_encoder(width: int, where: str) -> str:
    """The family of a model with one text encoder ``width`` wide (SDXL has two); ``where`` names it in errors."""
    for key, family in FAMILIES.items():
        if len(family.encoders) == 1 and ENCODER_WIDTHS[family.encoders[0]] == width:
            return key
    supported = " and ".join(
        f"{f.display_name} ({ENCODER_WIDTHS[f.encoders[0]]})" for f in FAMILIES.values() if len(f.encoders) == 1
    )
    raise UserError(f"{where} is {width} wide; only {supported} text encoders, or SDXL's pair, are supported.")
