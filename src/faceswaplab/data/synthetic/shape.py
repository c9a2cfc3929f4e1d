"""An identity's 68 landmarks in 3D (template units): its neutral shape, the expression model and head rotation."""

from __future__ import annotations

import functools
import itertools

import numpy as np

from faceswaplab.data.synthetic.identity import Identity
from faceswaplab.faces import template as T

_PIVOT = np.array([T.CROP_CENTER[0], T.CROP_CENTER[1], 0.0])  # the head rotates about this point


@functools.lru_cache(maxsize=1024)
def _neutral_face(idn: Identity) -> np.ndarray:
    """The identity's neutral 68 points, (68, 3): the template deformed by the shape parameters."""
    p = T.MEAN_FACE_3D.copy()
    s = np.sin(np.linspace(0, np.pi, 17))
    p[T.JAW, 0] *= 1.0 + (idn.jaw_width - 1.0) * s**0.7
    p[T.JAW, 1] += idn.chin_length * s**4
    for eye, side in ((T.EYE_LEFT, -1), (T.EYE_RIGHT, 1)):
        c = p[eye].mean(0)
        d = p[eye] - c
        d[:, 0] *= idn.eye_size
        d[:, 1] *= idn.eye_size * idn.eye_openness
        t = idn.eye_tilt * -side  # positive tilt lifts the outer corners
        d[:, :2] = d[:, :2] @ np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
        p[eye] = c + d + [side * idn.eye_spacing, 0, 0]
    for brow, side in ((T.BROW_LEFT, -1), (T.BROW_RIGHT, 1)):
        p[brow, 0] += side * idn.eye_spacing * 0.6
        p[brow, 1] += idn.brow_height - idn.brow_arch * np.array([0.0, 0.6, 1.0, 0.7, 0.2])[::-side]
    p[T.NOSE, 2] *= idn.nose_depth
    p[T.NOSE[1:], 1] += idn.nose_length * np.array([0.33, 0.66, 1, 1, 1, 1, 1, 1])
    p[T.NOSE_BOTTOM, 0] *= idn.nose_width
    p[T.MOUTH, 0] *= idn.mouth_width
    p[T.MOUTH, 1] += idn.nose_length * 0.5
    p[[49, 50, 51, 52, 53], 1] -= (idn.upper_lip - 1.0) * np.array([0.03, 0.05, 0.05, 0.05, 0.03])
    p[[55, 56, 57, 58, 59], 1] += (idn.lower_lip - 1.0) * np.array([0.03, 0.05, 0.05, 0.05, 0.03])
    # Width and length scale about the eye line, where the template has its origin.
    p[:, 0] *= idn.face_width
    p[:, 1] = np.where(p[:, 1] > 0, p[:, 1] * idn.face_length, p[:, 1])
    p.setflags(write=False)
    return p


_JAW_DROP = np.sin(np.linspace(0, np.pi, 17)) ** 3
_BROW_LIFT = np.array([0.8, 0.9, 1, 1.05, 1.1, 1.1, 1.05, 1, 0.9, 0.8])


def _expression_model(idn: Identity, expression) -> np.ndarray:
    """The identity's 68 points with `expression` (mouth_open, smile, brow_raise, blink) applied, (68, 3).

    A polynomial of degree at most one in each parameter with at most pairwise products (brow raise x blink,
    smile x blink), so :func:`_expression_basis` reproduces it exactly.
    """
    mouth_open, smile, brow, blink = (float(v) for v in expression)
    p = _neutral_face(idn).copy()
    # Opening the mouth rotates the jaw: lower lip and chin go down, the corners follow part of the way.
    drop = 0.32 * mouth_open
    p[T.JAW, 1] += drop * _JAW_DROP
    p[T.JAW, 2] -= 0.1 * drop * _JAW_DROP
    p[[55, 56, 57, 58, 59, 65, 66, 67], 1] += drop * np.array([0.75, 0.95, 1.0, 0.95, 0.75, 0.85, 0.9, 0.85])
    p[[48, 54, 60, 64], 1] += drop * 0.45
    p[[61, 62, 63], 1] -= 0.02 * mouth_open
    # Smile: corners up and out; the lips stretch and part a little.
    mw = p[54, 0] - p[48, 0]
    p[[48, 60], 0] -= 0.1 * mw * smile
    p[[54, 64], 0] += 0.1 * mw * smile
    p[[48, 54, 60, 64], 1] -= 0.11 * smile
    p[[49, 59, 61, 67], 0] -= 0.04 * mw * smile
    p[[53, 55, 63, 65], 0] += 0.04 * mw * smile
    p[[49, 53], 1] -= 0.04 * smile
    p[[59, 55], 1] -= 0.05 * smile
    p[[65, 66, 67], 1] += 0.025 * smile
    # Brow raise lifts the brows (inner ends a bit more) and the upper lids slightly.
    p[T.BROWS, 1] -= brow * 0.13 * _BROW_LIFT
    up, low = [37, 38, 43, 44], [41, 40, 47, 46]
    p[up, 1] -= 0.015 * brow
    # Blink: the upper lid comes down onto the lower lid.
    p[up, 1:] = (1 - blink) * p[up, 1:] + blink * (p[low, 1:] - [0.004, 0.0])
    # A smile's cheeks push the lower lids (and a closed upper lid with them) up.
    p[low, 1] -= 0.012 * smile
    p[up, 1] -= 0.012 * smile * blink
    return p


_PAIRS = tuple(itertools.combinations(range(4), 2))


@functools.lru_cache(maxsize=1024)
def _expression_basis(idn: Identity) -> np.ndarray:
    """(11, 68, 3): neutral points, one offset per expression parameter, one per pair of parameters."""
    e = np.eye(4)
    f0 = _expression_model(idn, np.zeros(4))
    single = [_expression_model(idn, v) - f0 for v in e]
    pairs = [_expression_model(idn, e[i] + e[j]) - single[i] - single[j] - f0 for i, j in _PAIRS]
    basis = np.stack([f0, *single, *pairs])
    basis.setflags(write=False)
    return basis


def _expressive_face(idn: Identity, expression: np.ndarray) -> np.ndarray:
    """`_expression_model`, evaluated from its cached basis, (68, 3)."""
    x = np.asarray(expression, np.float64)
    coef = np.concatenate([[1.0], x, [x[i] * x[j] for i, j in _PAIRS]])
    return np.tensordot(coef, _expression_basis(idn), 1)


def _rotation(pose: np.ndarray) -> np.ndarray:
    yaw, pitch, roll = np.deg2rad(np.asarray(pose, np.float64))
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry
