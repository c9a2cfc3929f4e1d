"""Identities of the synthetic population: shape parameters, colours and styles, dealt from (seed, index)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np


HAIR_STYLES = ("short", "long", "bald", "receding", "curly", "bangs", "bob", "afro")
FACIAL_HAIR = ("none", "stubble", "beard", "moustache")

# Palettes (RGB). Categorical attributes are dealt out so that neighbouring identities differ (see `_deal`).
_SKIN = ((255, 224, 196), (234, 186, 150), (198, 140, 100), (150, 98, 66), (104, 68, 46), (246, 206, 176),
         (218, 168, 118), (176, 118, 80))
_HAIR = ((24, 20, 18), (80, 50, 30), (135, 90, 55), (224, 186, 116), (196, 96, 40), (170, 170, 170),
         (238, 232, 215), (112, 34, 44))
_IRIS = ((96, 58, 30), (128, 98, 52), (64, 118, 66), (58, 108, 176), (112, 126, 140), (48, 30, 20))
_CLOTHES = ((200, 40, 50), (40, 90, 190), (40, 150, 80), (230, 180, 40), (120, 60, 160), (30, 30, 34),
            (235, 235, 230), (230, 110, 40), (40, 170, 180), (150, 110, 80))
_FACIAL_HAIR_DEAL = ("none", "none", "stubble", "beard", "moustache", "none")
_GLASSES_COLORS = ((20, 20, 20), (110, 60, 30), (160, 160, 170), (120, 20, 30))


@dataclass(frozen=True)
class Identity:
    """The fixed parameters of one identity (shape in template units, colours RGB), derived from (seed, index)."""

    index: int
    # shape
    face_width: float
    face_length: float
    jaw_width: float
    chin_length: float
    cranium_width: float
    forehead_height: float
    eye_spacing: float
    eye_size: float
    eye_openness: float
    eye_tilt: float
    iris_size: float
    brow_height: float
    brow_arch: float
    brow_thickness: float
    nose_length: float
    nose_width: float
    nose_depth: float
    mouth_width: float
    upper_lip: float
    lower_lip: float
    ear_size: float
    hair_volume: float
    # colours and styles
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    clothes: tuple[int, int, int]
    hair_style: str
    facial_hair: str
    glasses: bool
    glasses_color: tuple[int, int, int]


def _deal(seed: int, index: int, n: int, tag: int) -> int:
    """Palette entry of identity `index`: each block of `n` identities gets a permutation, so neighbours differ."""
    perm = np.random.default_rng([seed, index // n, tag, 7]).permutation(n)
    return int(perm[index % n])


@functools.lru_cache(maxsize=1024)
def make_identity(seed: int, index: int) -> Identity:
    """Identity `index` (any index >= 0) of the population drawn by `seed`."""
    if index < 0:
        raise ValueError(f"identity index must be >= 0, got {index}")
    rng = np.random.default_rng([seed, index, 1])

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    skin = _SKIN[_deal(seed, index, len(_SKIN), 1)]
    lips = tuple(int(c) for c in np.clip(np.array(skin) * [0.8, 0.5, 0.52] + [44, 10, 16], 0, 255))
    return Identity(
        index=index,
        face_width=u(0.93, 1.07), face_length=u(0.92, 1.08), jaw_width=u(0.85, 1.12), chin_length=u(-0.08, 0.1),
        cranium_width=u(0.97, 1.07), forehead_height=u(0.85, 1.1),
        eye_spacing=u(-0.05, 0.05), eye_size=u(0.9, 1.15), eye_openness=u(0.85, 1.3), eye_tilt=u(-0.12, 0.15),
        iris_size=u(0.85, 1.1),
        brow_height=u(-0.06, 0.04), brow_arch=u(-0.03, 0.08), brow_thickness=u(0.6, 1.5),
        nose_length=u(-0.07, 0.08), nose_width=u(0.8, 1.3), nose_depth=u(0.8, 1.25),
        mouth_width=u(0.85, 1.2), upper_lip=u(0.6, 1.4), lower_lip=u(0.7, 1.4), ear_size=u(0.85, 1.2),
        hair_volume=u(0.06, 0.16),
        skin=skin, hair=_HAIR[_deal(seed, index, len(_HAIR), 2)], iris=_IRIS[_deal(seed, index, len(_IRIS), 3)],
        lips=lips, clothes=_CLOTHES[_deal(seed, index, len(_CLOTHES), 4)],
        hair_style=HAIR_STYLES[_deal(seed, index, len(HAIR_STYLES), 5)],
        facial_hair=_FACIAL_HAIR_DEAL[_deal(seed, index, len(_FACIAL_HAIR_DEAL), 6)],
        glasses=bool(rng.uniform() < 0.25),
        glasses_color=_GLASSES_COLORS[int(rng.integers(len(_GLASSES_COLORS)))],
    )


def neutral_identity(base: Identity) -> Identity:
    """`base` with the template's mean shape: its frontal neutral render lands on `template.canonical_landmarks`."""
    return replace(
        base, face_width=1.0, face_length=1.0, jaw_width=1.0, chin_length=0.0, eye_spacing=0.0, eye_size=1.0,
        eye_openness=1.0, eye_tilt=0.0, brow_height=0.0, brow_arch=0.0, nose_length=0.0, nose_width=1.0,
        nose_depth=1.0, mouth_width=1.0, upper_lip=1.0, lower_lip=1.0)
