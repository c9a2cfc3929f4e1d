"""A procedural cartoon face renderer: faceswaplab's built-in data set (nothing to download).

Every image comes with exact ground truth: the 68 landmarks *are* the projected 3D points the face is drawn from
(the template :data:`~faceswaplab.faces.template.MEAN_FACE_3D`, deformed per identity and per expression), plus
identity, pose, expression and a face mask. Rendering is deterministic: ``SyntheticFaces(seed).sample(i, k)``
gives the same bytes in any process and in any call order.

Pose convention (degrees; x right, y down, z towards the camera; orthographic camera; rotation
``R = Rz(roll) Rx(pitch) Ry(yaw)`` about the crop centre): positive yaw turns the nose towards the image right,
positive pitch lifts the chin (the nose moves up), positive roll tilts the head clockwise in the image.

How it draws: every identity has a *rig*, fixed 3D curves (hair, ears, cranium, glasses, ...) and curves that are
linear in the 68 expressive landmarks (lids, lips, brows, ...). A render deforms the landmarks by the expression,
evaluates the rig (a sparse linear map), rotates and projects everything at once and draws 2D polygons with
anti-aliased OpenCV primitives on a supersampled RGBA canvas, back to front. Face features are drawn on a separate
skin layer that is clipped by the face outline, so features never leave the face (the far eye is cut by the cheek
at large yaw). Shading (wrapped Lambert plus a faint highlight on an ellipsoid head) and the background are
applied at the output resolution.

Command line: ``python -m faceswaplab.data.synthetic --out grid.png`` writes a grid of identities x variations.
"""

from __future__ import annotations

import argparse
import functools
import itertools
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from faceswaplab.data.schema import EXPRESSION_NAMES
from faceswaplab.faces import template as T

__all__ = [
    "Background", "FaceRender", "HAIR_STYLES", "Identity", "Light", "SyntheticFaces", "make_identity",
    "neutral_identity", "random_background", "random_light", "render_grid",
]

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
_PIVOT = np.array([T.CROP_CENTER[0], T.CROP_CENTER[1], 0.0])  # the head rotates about this point


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


@dataclass(frozen=True)
class Light:
    """A directional light; `direction` points towards the light (camera coordinates: x right, y down, z to camera)."""

    direction: tuple[float, float, float] = (-0.35, -0.45, 0.82)
    ambient: float = 0.55
    diffuse: float = 0.5
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Background:
    """A two-colour linear gradient along `angle` (radians) with soft blobs (x, y, radius as image fractions, RGB)."""

    top: tuple[int, int, int] = (150, 156, 164)
    bottom: tuple[int, int, int] = (96, 100, 108)
    angle: float = 0.0
    blobs: tuple[tuple[float, float, float, tuple[int, int, int]], ...] = ()


@dataclass
class FaceRender:
    """One rendered face and its ground truth."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) float32, pixel coords
    mask: np.ndarray  # (H, W) float32 in [0, 1]
    identity: int
    pose: np.ndarray  # (3,) float32 yaw, pitch, roll in degrees
    expression: np.ndarray  # (4,) float32 mouth_open, smile, brow_raise, blink


# ----------------------------------------------------------------------------------------------------------------
# identities


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


# ----------------------------------------------------------------------------------------------------------------
# 3D geometry (template units)


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


@functools.lru_cache(maxsize=64)
def _smooth_matrix(n: int, k: int, closed: bool) -> np.ndarray:
    """(M, n) weights of a uniform Catmull-Rom curve through n control points, k samples per segment."""
    t = np.arange(k)[:, None] / k
    basis = 0.5 * np.concatenate(
        [-t**3 + 2 * t**2 - t, 3 * t**3 - 5 * t**2 + 2, -3 * t**3 + 4 * t**2 + t, t**3 - t**2], 1)  # (k, 4)
    e = np.eye(n)
    q = np.concatenate([e[-1:], e, e[:2]]) if closed else np.concatenate([2 * e[:1] - e[1:2], e, 2 * e[-1:] - e[-2:-1]])
    segs = len(q) - 3
    win = np.stack([q[i:i + segs] for i in range(4)], 1)  # (S, 4, n)
    out = np.einsum("tk,skn->stn", basis, win).reshape(-1, n)
    return out if closed else np.concatenate([out, e[-1:]])


def _smooth(p: np.ndarray, k: int = 4, closed: bool = False) -> np.ndarray:
    """A Catmull-Rom curve through the (n, D) points `p`, `k` samples per segment."""
    return _smooth_matrix(len(p), k, closed) @ p


def _ellipsoid(c: np.ndarray, r: np.ndarray, n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and unit normals on an axis-aligned ellipsoid, latitude measured from the top (-y)."""
    th, ph = np.meshgrid(np.linspace(0, np.pi, n_lat), np.linspace(0, 2 * np.pi, n_lon, endpoint=False))
    d = np.stack([np.sin(th) * np.sin(ph), -np.cos(th), np.sin(th) * np.cos(ph)], -1).reshape(-1, 3)
    n = d / r
    return c + d * r, n / np.linalg.norm(n, axis=1, keepdims=True)


def _ellipsoid_front(x, y, c, r):
    """z of the camera-facing surface of the ellipsoid (c, r) above (x, y), clamped at the rim."""
    q = 1.0 - ((x - c[0]) / r[0]) ** 2 - ((y - c[1]) / r[1]) ** 2
    return c[2] + r[2] * np.sqrt(np.clip(q, 0.0, None))


class _RigBuilder:
    """Collects named 3D curves: `derived` ones are linear in the 68 landmarks, `fixed` ones are constant."""

    def __init__(self):
        self.w, self.o, self.fixed_pts = [], [], []
        self.names: list[tuple[str, bool, int]] = []
        self.normals: dict[str, np.ndarray] = {}

    def derived(self, name: str, w, o=None, smooth: int = 0, closed: bool = False):
        w = np.atleast_2d(np.asarray(w, np.float64))
        o = np.zeros((len(w), 3)) if o is None else np.broadcast_to(np.asarray(o, np.float64), (len(w), 3))
        if smooth:
            s = _smooth_matrix(len(w), smooth, closed)
            w, o = s @ w, s @ o
        self.w.append(w)
        self.o.append(o)
        self.names.append((name, True, len(w)))

    def fixed(self, name: str, p, smooth: int = 0, closed: bool = False, normal=None):
        p = np.atleast_2d(np.asarray(p, np.float64))
        if smooth:
            p = _smooth(p, smooth, closed)
        self.fixed_pts.append(p)
        self.names.append((name, False, len(p)))
        if normal is not None:
            self.normals[name] = np.asarray(normal, np.float64)

    def build(self) -> "_Rig":
        n_derived = sum(len(w) for w in self.w)
        parts, at_d, at_f = {}, 68, 68 + n_derived
        for name, derived, n in self.names:
            if derived:
                parts[name] = slice(at_d, at_d + n)
                at_d += n
            else:
                parts[name] = slice(at_f, at_f + n)
                at_f += n
        # Each derived point mixes at most a few landmarks: keep (index, weight) pairs instead of dense rows.
        w = np.concatenate(self.w)  # (N, 68)
        k = max(1, int((w != 0).sum(1).max()))
        idx = np.argsort(w == 0, axis=1, kind="stable")[:, :k]
        return _Rig(idx, np.take_along_axis(w, idx, 1), np.concatenate(self.o), np.concatenate(self.fixed_pts),
                    parts, self.normals)


@dataclass
class _Rig:
    idx: np.ndarray  # (N, K) landmark indices of each derived point
    wts: np.ndarray  # (N, K) their weights: derived = sum_k wts * landmarks[idx] + o
    o: np.ndarray  # (N, 3)
    fixed: np.ndarray  # (F, 3)
    parts: dict[str, slice]  # into concat(landmarks, derived, fixed)
    normals: dict[str, np.ndarray] = field(default_factory=dict)  # head-frame normals for visibility tests

    def points(self, lm3: np.ndarray) -> np.ndarray:
        derived = np.einsum("nk,nkd->nd", self.wts, lm3[self.idx]) + self.o
        return np.concatenate([lm3, derived, self.fixed])


def _cranium(idn: Identity) -> tuple[np.ndarray, np.ndarray]:
    centre = np.array([0.0, -0.2, -0.55])
    radii = np.array([1.03 * idn.cranium_width * idn.face_width, 1.22, 0.8])
    return centre, radii


_L = np.eye(68)


def _mean(idx) -> np.ndarray:
    return _L[idx].mean(0)


@functools.lru_cache(maxsize=1024)
def _rig(idn: Identity) -> _Rig:
    b = _RigBuilder()
    p0 = _neutral_face(idn)
    c, r = _cranium(idn)
    style = idn.hair_style

    # --- face outline: jaw (follows the mouth), cheeks and the forehead up to the hairline
    b.derived("jaw", _L[T.JAW], smooth=3)
    # Cheeks: just inside the jaw line but further forward, so that they make the far-side silhouette at large yaw.
    cheeks = p0[[1, 2, 3, 4, 12, 13, 14, 15]] * [0.96, 1.0, 0.0]
    cheeks[:, 2] = np.tile([-0.12, -0.12, -0.08, -0.02], 2)
    b.fixed("cheeks", cheeks)
    # Hairline: a rounded rectangle over the forehead, on the cranium.
    height = 0.95 * idn.forehead_height * (1.22 if style == "receding" else 1.0)
    phi = np.linspace(0, np.pi, 15)
    hx = -np.sign(np.cos(phi)) * np.abs(np.cos(phi)) ** 0.6 * r[0] * 0.9
    hy = -0.12 - height * np.sin(phi) ** 0.7
    if style == "receding":
        hy = hy + 0.16 * np.sin(phi * 2) ** 4  # the temples recede further than the centre
    hairline = np.stack([hx, hy, _ellipsoid_front(hx, hy, c, r)], 1)
    skull, _ = _ellipsoid(c, r, 9, 14)
    skull = skull[skull[:, 1] < -0.1]
    b.fixed("forehead", skull if style == "bald" else hairline)

    # --- hair mass behind the head
    vol = 1.0 + idn.hair_volume * {"curly": 1.7, "afro": 3.5}.get(style, 1.0)
    hc = c + [0, -0.04 * vol, 0]
    shell, _ = _ellipsoid(hc, r * vol, 11, 16)
    if style == "bald":
        ring = (shell[:, 1] > -0.45) & (shell[:, 1] < 0.35) & (shell[:, 2] < c[2] + 0.35)
        shell = shell[ring]
    else:
        low = {"short": 0.1, "receding": 0.05, "curly": 0.45, "bangs": 0.35, "bob": 0.95, "long": 0.6,
               "afro": 0.7}[style]
        shell = shell[shell[:, 1] < low]
        if style in ("long", "bob"):
            ys = np.linspace(0.2, 2.3 if style == "long" else 1.05, 6)
            for s in (-1, 1):
                for z in (-1.0, -0.4):
                    shell = np.concatenate([shell, np.stack([np.full(6, s * r[0] * vol * 1.02), ys, np.full(6, z)], 1)])
    b.fixed("shell", shell)
    # strands: curves over the crown, each with the normal of its middle (drawn only when that faces the camera)
    rs = r * (1 + 0.8 * idn.hair_volume)
    th = np.linspace(0.12, 1.35, 6)
    for k, a in enumerate(np.linspace(-1.35, 1.35, 9)):
        d = np.stack([np.sin(th) * np.sin(a), -np.cos(th), np.sin(th) * np.cos(a)], 1)
        b.fixed(f"strand{k}", c + d * rs, smooth=3, normal=d[3] / r)
    # sheen: a light band across the crown
    az = np.linspace(-1.4, 1.4, 15)
    d = np.stack([np.sin(0.6) * np.sin(az), np.full(15, -np.cos(0.6)), np.sin(0.6) * np.cos(az)], 1)
    b.fixed("sheen", c + d * rs, normal=d / r)
    if style in ("curly", "afro"):
        pts, nrm = _ellipsoid(hc, r * (vol - 0.02), 9, 18)
        keep = pts[:, 1] < low - 0.05
        b.fixed("curls", pts[keep], normal=nrm[keep])
    if style in ("bangs", "bob"):
        rr = r * 1.04
        brow_y = p0[T.BROWS, 1].min()
        xs = np.linspace(hairline[0, 0] * 0.98, hairline[-1, 0] * 0.98, 9)
        ys = brow_y - 0.09 + 0.06 * (np.arange(9) % 2) - 0.1 * (xs / xs[-1]) ** 4
        fringe = np.stack([xs, ys, _ellipsoid_front(xs, ys, c, rr)], 1)
        top = hairline[::-1] + [0, -0.02, 0.05]
        b.fixed("bangs", np.concatenate([_smooth(fringe, 2), top]))
        for k in range(4):
            x0, y0 = fringe[1 + 2 * k, :2]
            xs_k = x0 * np.array([0.75, 0.88, 1.0])
            ys_k = np.linspace(hairline[:, 1].min() + 0.15, y0 - 0.03, 3)
            b.fixed(f"fringe{k}", np.stack([xs_k, ys_k, _ellipsoid_front(xs_k, ys_k, c, rr)], 1), smooth=2)

    # --- neck and ears
    b.fixed("neck", np.array([[-0.5, 0.6, -0.55], [0.5, 0.6, -0.55], [0.55, 2.6, -0.5], [-0.55, 2.6, -0.5]])
            * [idn.jaw_width, 1, 1])
    t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    ti = t[2:10]
    size = 0.36 * idn.ear_size
    for k, side in ((0, -1), (16, 1)):
        # the ear lies roughly in the y-z plane, sticking out a little to the side
        o = np.stack([side * (0.06 + 0.05 * (1 + np.cos(t))), 0.22 + size * np.sin(t) * (1 - 0.15 * np.sin(t)),
                      -0.05 + 0.22 * idn.ear_size * np.cos(t)], 1)
        b.derived(f"ear{k}", np.tile(_L[k], (len(t), 1)), o)
        o = np.stack([np.full(8, side * 0.05), 0.22 + 0.6 * size * np.sin(ti), -0.05 + 0.13 * np.cos(ti)], 1)
        b.derived(f"ear_in{k}", np.tile(_L[k], (8, 1)), o)

    # --- eyes (anchored on the corners, which blinking does not move)
    eye_l, eye_r = _mean([36, 39]), _mean([42, 45])
    for name, e, centre in (("l", T.EYE_LEFT, eye_l), ("r", T.EYE_RIGHT, eye_r)):
        b.derived(f"upper_{name}", _L[[e[0], e[1], e[2], e[3]]], smooth=4)
        b.derived(f"lower_{name}", _L[[e[3], e[4], e[5], e[0]]], smooth=4)
        b.derived(f"crease_{name}", _L[[e[0], e[1], e[2], e[3]]],
                  [[0, -0.03, 0], [0, -0.075, 0], [0, -0.075, 0], [0, -0.02, 0]], smooth=3)
        b.derived(f"iris_{name}", centre, [0, -0.005, 0.04])
        b.derived(f"blush_{name}", centre, [0, 0.4, 0.05])
        b.derived(f"socket_{name}", centre, [0, -0.1, 0.0])
        if idn.glasses:
            tt = np.linspace(0, 2 * np.pi, 20, endpoint=False)
            rim = np.stack([0.26 * np.sign(np.cos(tt)) * np.abs(np.cos(tt)) ** 0.6,
                            0.01 + 0.17 * np.sign(np.sin(tt)) * np.abs(np.sin(tt)) ** 0.6, np.full(20, 0.2)], 1)
            b.derived(f"rim_{name}", np.tile(centre, (20, 1)), rim)
    if idn.glasses:
        b.derived("temple_l", [eye_l, _L[0]], [[-0.26, 0.01, 0.2], [-0.03, 0.0, 0.1]])
        b.derived("temple_r", [eye_r, _L[16]], [[0.26, 0.01, 0.2], [0.03, 0.0, 0.1]])
        b.derived("bridge", [eye_l, (eye_l + eye_r) / 2, eye_r],
                  [[0.26, 0.01, 0.2], [0, -0.06, 0.22], [-0.26, 0.01, 0.2]], smooth=3)
    b.derived("brow_l", _L[T.BROW_LEFT], smooth=3)
    b.derived("brow_r", _L[T.BROW_RIGHT[::-1]], smooth=3)  # both run from the outer to the inner end

    # --- nose
    for name, side, wing in (("r", 1, 35), ("l", -1, 31)):  # shadow on the image-right / image-left side
        b.derived(f"nose_shadow_{name}", _L[[28, 29, 30, wing, 29]],
                  [[side * 0.03, 0, 0], [side * 0.045, 0, 0], [side * 0.04, 0.02, 0],
                   [0, -0.03, 0], [side * 0.1, 0, -0.08]], smooth=3, closed=True)
    b.derived("nose_base", _L[31:36], smooth=3)
    for k, side in ((31, -1), (35, 1)):
        b.derived(f"wing{k}", _L[[k, k, k]], [[0.01 * side, -0.13, 0], [side * 0.05, -0.05, 0], [0, 0, 0]], smooth=3)
        mouth_corner = 48 if side < 0 else 54
        b.derived(f"fold{k}", [_L[k], (_L[k] + _L[mouth_corner]) / 2, _L[mouth_corner]],
                  [[side * 0.1, 0.0, 0], [side * 0.14, 0.0, 0], [side * 0.08, 0.01, 0]], smooth=4)
    # --- mouth
    b.derived("lips", _L[48:60], smooth=4, closed=True)
    b.derived("lip_top", _L[48:55], smooth=4)
    b.derived("inner_up", _L[60:65], smooth=4)
    b.derived("inner_low", _L[[64, 65, 66, 67, 60]], smooth=4)
    # --- facial hair
    if idn.facial_hair in ("stubble", "beard"):
        up = [[0.12, -0.05, 0], [0.12, 0.1, 0], [0, 0.07, 0], [-0.12, 0.1, 0], [-0.12, -0.05, 0]]
        b.derived("beard", np.concatenate([_L[2:15], _L[[54, 35, 33, 31, 48]]]),
                  np.concatenate([np.zeros((13, 3)), up]), smooth=3, closed=True)
    if idn.facial_hair in ("moustache", "beard"):
        b.derived("moustache", _L[[48, 49, 51, 53, 54, 35, 33, 31]],
                  [[-0.06, 0.06, 0], [0, -0.03, 0], [0, -0.03, 0], [0, -0.03, 0], [0.06, 0.06, 0], [0.08, 0.05, 0],
                   [0, 0.05, 0], [-0.08, 0.05, 0]], smooth=3, closed=True)
    return b.build()


# ----------------------------------------------------------------------------------------------------------------
# drawing helpers (RGBA uint8 canvases, float pixel coordinates)

_SHIFT = 4
_ONE = 1 << _SHIFT


def _ip(p: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(p) * _ONE).astype(np.int32)


def _fill(img, pts, color):
    cv2.fillPoly(img, [_ip(pts)], color, cv2.LINE_AA, _SHIFT)


def _lines(img, pts, color, thickness, closed=False):
    cv2.polylines(img, [_ip(pts)], closed, color, max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _circle(img, c, r, color, thickness=-1):
    x, y = _ip(c)
    cv2.circle(img, (int(x), int(y)), max(1, int(round(r * _ONE))), color,
               thickness if thickness < 0 else max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _rgba(c, k: float = 1.0) -> tuple[int, int, int, int]:
    return (int(min(255, c[0] * k)), int(min(255, c[1] * k)), int(min(255, c[2] * k)), 255)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))


def _hull(p2: np.ndarray) -> np.ndarray:
    return cv2.convexHull(p2.astype(np.float32))[:, 0, :]


def _clipped(layer: np.ndarray, clip_poly: np.ndarray, draw) -> None:
    """Run `draw(patch, origin)` on a copy of the patch of `layer` around `clip_poly` and keep it only inside."""
    h, w = layer.shape[:2]
    x0, y0 = np.maximum(np.floor(clip_poly.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(clip_poly.max(0)).astype(int) + 3, [w, h])
    if x1 <= x0 or y1 <= y0:
        return
    roi = layer[y0:y1, x0:x1]
    patch = roi.copy()
    origin = np.array([x0, y0], np.float64)
    draw(patch, origin)
    m = np.zeros(roi.shape[:2], np.uint8)
    _fill(m, clip_poly - origin, 255)
    wgt = m.astype(np.float32) * (1.0 / 255.0)
    layer[y0:y1, x0:x1] = cv2.blendLinear(patch, roi, wgt, 1.0 - wgt)


def _soft_spot(layer: np.ndarray, c: np.ndarray, radii: tuple[float, float], color, strength: float):
    """Blend `color` into `layer` with a separable Gaussian falloff (radii in pixels, about two sigmas)."""
    h, w = layer.shape[:2]
    x0, y0 = np.maximum(np.floor(c - radii).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(c + radii).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0 or min(radii) < 0.5:
        return
    wx = np.exp(-2.0 * ((np.arange(x0, x1, dtype=np.float32) - c[0]) / radii[0]) ** 2)
    wy = np.exp(-2.0 * ((np.arange(y0, y1, dtype=np.float32) - c[1]) / radii[1]) ** 2) * strength
    wgt = np.outer(wy, wx).astype(np.float32)
    roi = layer[y0:y1, x0:x1]
    layer[y0:y1, x0:x1] = cv2.blendLinear(np.full_like(roi, color), roi, wgt, 1.0 - wgt)


def _darker(c) -> tuple[int, int, int]:
    """A shade for lines on hair: darker, or lighter for near-black hair."""
    return _mix(c, (0, 0, 0), 0.22) if np.mean(c) > 60 else _mix(c, (150, 140, 130), 0.2)


# ----------------------------------------------------------------------------------------------------------------
# the renderer


def _supersample(size: int) -> int:
    """Internal resolution factor: small renders are drawn larger and box-filtered down (anti-aliased lines alone
    look fine from about 200 px)."""
    return 4 if size <= 64 else 2 if size < 200 else 1


class SyntheticFaces:
    """A population of procedural identities; `sample` draws deterministic, varied renders of each.

    >>> import numpy as np
    >>> faces = SyntheticFaces(seed=0)
    >>> face = faces.sample(identity=2, index=0, size=64)  # a random pose, expression, light and background
    >>> face.image.shape, face.image.dtype, face.landmarks.shape, face.identity
    ((64, 64, 3), dtype('uint8'), (68, 2), 2)
    >>> np.array_equal(faces.sample(2, 0, size=64).image, face.image)  # deterministic
    True
    >>> smile = faces.render(2, size=64, pose=(20, 0, 0), expression=(0, 1, 0, 0))  # turned right, smiling
    >>> smile.mask.shape, bool(smile.mask.max() == 1.0)
    ((64, 64), True)
    >>> front = faces.render(2, size=64)
    >>> [round(float(f.landmarks[30, 0]), 1) for f in (front, smile)]  # the nose tip's x: centred, then right
    [31.5, 34.8]
    """

    def __init__(self, seed: int = 0, num_identities: int = 8):
        if num_identities < 1:
            raise ValueError(f"num_identities must be >= 1, got {num_identities}")
        self.seed = int(seed)
        self.num_identities = int(num_identities)

    def __repr__(self) -> str:
        return f"SyntheticFaces(seed={self.seed}, num_identities={self.num_identities})"

    def identity(self, i: int) -> Identity:
        """The fixed parameters of identity `i` (any i >= 0)."""
        return make_identity(self.seed, int(i))

    def sample(self, identity: int, index: int, size: int = 128, *, max_yaw: float = 35.0, max_pitch: float = 20.0,
               max_roll: float = 15.0) -> FaceRender:
        """Render image `index` of `identity`; the variation is drawn deterministically from (seed, identity, index).

        Pose is uniform in +-(max_yaw, max_pitch, max_roll) degrees; each expression parameter is active in
        40-45% of the images (blinks 15%); light, background, +-5% scale, +-3% shift and gaze vary too.
        """
        if identity < 0 or index < 0:
            raise ValueError(f"identity and index must be >= 0, got identity={identity}, index={index}")
        rng = np.random.default_rng([self.seed, int(identity), int(index), 2])
        pose = rng.uniform(-1, 1, 3) * [max_yaw, max_pitch, max_roll]
        expression = np.where(rng.uniform(size=4) < [0.45, 0.45, 0.4, 0.15], rng.uniform(size=4), 0.0)
        expression[3] = 0.3 + 0.7 * expression[3] if expression[3] > 0 else 0.0  # blinks are mostly closed
        return self.render(
            identity, size, pose=pose, expression=expression, light=random_light(rng),
            background=random_background(rng), scale=1.0 + rng.uniform(-0.05, 0.05),
            shift=tuple(rng.uniform(-0.03, 0.03, 2)), gaze=tuple(rng.uniform(-0.6, 0.6, 2)))

    def render(self, identity: int | Identity, size: int = 128, *, pose=(0.0, 0.0, 0.0),
               expression=(0.0, 0.0, 0.0, 0.0), light: Light | None = None,
               background: Background | tuple | np.ndarray | None = None, scale: float = 1.0, shift=(0.0, 0.0),
               gaze=(0.0, 0.0)) -> FaceRender:
        """Render `identity` (an index or an :class:`Identity`) at `pose` (yaw, pitch, roll degrees) with `expression`.

        `expression` is (mouth_open, smile, brow_raise, blink) in [0, 1]; `background` a :class:`Background`, an RGB
        colour or a (size, size, 3) uint8 image; `scale` and `shift` (fractions of `size`) move the face from the
        canonical framing; `gaze` (x, y in [-1, 1]) moves the irises.
        """
        if not 16 <= size <= 1024:
            raise ValueError(f"size must be in [16, 1024], got {size}")
        idn = identity if isinstance(identity, Identity) else self.identity(identity)
        pose = np.asarray(pose, np.float64).reshape(3)
        expression = np.clip(np.asarray(expression, np.float64).reshape(len(EXPRESSION_NAMES)), 0.0, 1.0)
        light = light or Light()
        ss = _supersample(size)
        # template units -> output pixels: the canonical framing, scaled and shifted about the crop centre
        m = T.template_to_crop(size)
        c = (size - 1) / 2.0
        m_out = m * scale
        m_out[:, 2] = c + scale * (m[:, 2] - c) + np.asarray(shift, np.float64) * size
        # output pixels -> internal pixels (pixel centres at integers in both)
        m_int = m_out * ss
        m_int[:, 2] += (ss - 1) / 2.0
        rot = _rotation(pose)
        scene = _Scene(idn, expression, rot, m_int, size * ss, light, np.asarray(gaze, np.float64))
        canvas, face_mask = scene.draw()
        if ss > 1:  # box-filter the supersampled canvas (premultiplied RGBA) and mask
            canvas = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
            face_mask = cv2.resize(face_mask, (size, size), interpolation=cv2.INTER_AREA)
        # image = background * (1 - alpha) + shading * premultiplied foreground (in place: this is the hot loop)
        out = canvas[..., :3].astype(np.float32)
        out *= _shading(size, m_out, rot, light)
        clear = canvas[..., 3:].astype(np.float32)
        clear *= -1.0 / 255.0
        clear += 1.0
        bg = _background_image(background, size).astype(np.float32)
        bg *= clear
        out += bg
        out += 0.5
        image = np.clip(out, 0, 255, out=out).astype(np.uint8)
        landmarks = (scene.p2[:68] - (ss - 1) / 2.0) / ss
        return FaceRender(
            image=image, landmarks=landmarks.astype(np.float32), mask=face_mask.astype(np.float32) * (1.0 / 255.0),
            identity=int(idn.index), pose=pose.astype(np.float32), expression=expression.astype(np.float32))


def random_light(rng: np.random.Generator) -> Light:
    """A random light from the front hemisphere, slightly tinted."""
    az = rng.uniform(-np.pi, np.pi)
    el = rng.uniform(0.15, 0.95)  # angle away from the camera axis
    d = (np.sin(el) * np.cos(az), np.sin(el) * np.sin(az) - 0.2, np.cos(el))
    tint = 1.0 + rng.uniform(-0.07, 0.07, 3)
    ambient = float(rng.uniform(0.45, 0.65))
    diffuse = float(rng.uniform(0.3, 1.08 - ambient))  # at most ~10% over-exposed, so light skin keeps its detail
    return Light(direction=tuple(float(v) for v in d), ambient=ambient, diffuse=diffuse,
                 color=tuple(float(v) for v in tint / tint.mean()))


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    hsv = np.array([[[h % 180, np.clip(s, 0, 255), np.clip(v, 0, 255)]]], np.uint8)
    return tuple(int(x) for x in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def random_background(rng: np.random.Generator) -> Background:
    """A random two-colour gradient with up to five soft blobs."""
    h, s, v = rng.uniform(0, 180), rng.uniform(15, 170), rng.uniform(60, 235)
    top = _hsv_to_rgb(h, s, v)
    bottom = _hsv_to_rgb(h + rng.uniform(-30, 30), s + rng.uniform(-60, 60), v + rng.uniform(-90, 60))
    blobs = tuple((float(rng.uniform()), float(rng.uniform()), float(rng.uniform(0.05, 0.3)),
                   _hsv_to_rgb(rng.uniform(0, 180), rng.uniform(0, 140), rng.uniform(40, 245)))
                  for _ in range(int(rng.integers(0, 6))))
    return Background(top=top, bottom=bottom, angle=float(rng.uniform(-np.pi, np.pi)), blobs=blobs)


_BG_RES = 48


def _background_image(background, size: int) -> np.ndarray:
    if background is None:
        background = Background()
    if isinstance(background, np.ndarray):
        if background.shape != (size, size, 3) or background.dtype != np.uint8:
            raise ValueError(f"background image must be ({size}, {size}, 3) uint8, got {background.shape} "
                             f"{background.dtype}")
        return background
    if not isinstance(background, Background):
        return np.broadcast_to(np.asarray(background, np.float32).reshape(3), (size, size, 3))
    r = _BG_RES
    g = (np.arange(r, dtype=np.float32) + 0.5) / r - 0.5
    t = np.clip(np.sin(background.angle) * g[None, :] + np.cos(background.angle) * g[:, None] + 0.5, 0, 1)[..., None]
    img = np.asarray(background.top, np.float32) * (1 - t) + np.asarray(background.bottom, np.float32) * t
    for x, y, rad, col in background.blobs:
        cv2.circle(img, (int(x * r), int(y * r)), max(1, int(rad * r)), tuple(float(v) for v in col), -1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


_SHADE_RES = 48


def _shading(size: int, m_out: np.ndarray, rot: np.ndarray, light: Light) -> np.ndarray:
    """Wrapped-Lambert shading plus a faint highlight on an ellipsoid head, (size, size, 3) float32 multipliers."""
    r = min(size, _SHADE_RES)
    g = (np.arange(r, dtype=np.float32) + 0.5) * (size / r) - 0.5  # output pixel coordinates of the grid
    centre = rot @ (np.array([0.0, 0.1, -0.35]) - _PIVOT) + _PIVOT
    cx, cy = m_out[:, :2] @ centre[:2] + m_out[:, 2]
    unit = m_out[0, 0]
    dx = (g[None, :] - cx) / unit
    dy = (g[:, None] - cy) / unit
    ax, ay = rot[0, 0], rot[1, 0]  # the head's x axis in the image (roll)
    norm = np.hypot(ax, ay)
    ax, ay = ax / norm, ay / norm
    u = (dx * ax + dy * ay) / 1.15
    v = (-dx * ay + dy * ax) / 1.65
    inv = 1.0 / np.sqrt(np.maximum(u * u + v * v, 1.0))  # outside the ellipse the normal stays at the rim
    u, v = u * inv, v * inv
    nz = np.sqrt(np.clip(1.0 - u * u - v * v, 0.0, None))
    nx, ny = u * ax - v * ay, u * ay + v * ax
    ld = np.asarray(light.direction, np.float64)
    ld = ld / np.linalg.norm(ld)
    wrap = np.clip((nx * ld[0] + ny * ld[1] + nz * ld[2] + 0.35) / 1.35, 0.0, 1.0)
    h = ld + [0, 0, 1]
    h = h / np.linalg.norm(h)
    spec = np.clip(nx * h[0] + ny * h[1] + nz * h[2], 0, 1) ** 24 * 0.1
    s = (light.ambient + light.diffuse * wrap + spec).astype(np.float32)[..., None]
    s = s * np.asarray(light.color, np.float32)
    if r != size:
        s = cv2.resize(s, (size, size), interpolation=cv2.INTER_LINEAR)
    return s


class _Scene:
    """The projected rig of one render and the code that draws it, back to front."""

    def __init__(self, idn: Identity, expression: np.ndarray, rot: np.ndarray, m_int: np.ndarray, res: int,
                 light: Light, gaze: np.ndarray):
        self.idn, self.expr, self.rot, self.m, self.res = idn, expression, rot, m_int, res
        self.unit = float(np.hypot(m_int[0, 0], m_int[1, 0]))  # internal pixels per template unit
        self.rig = _rig(idn)
        p3 = self.rig.points(_expressive_face(idn, expression))
        q = (p3 - _PIVOT) @ rot.T + _PIVOT
        self.p2 = q[:, :2] @ m_int[:, :2].T + m_int[:, 2]  # (P, 2) internal pixels
        # 2D image offset of the irises for the gaze (a shift in the head's x-y plane)
        self.gaze_px = (rot @ [gaze[0] * 0.05, gaze[1] * 0.025, 0.0])[:2] @ m_int[:, :2].T
        ld = np.asarray(light.direction, np.float64)
        self.light_head = rot.T @ (ld / np.linalg.norm(ld))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.p2[self.rig.parts[name]]

    def faces_camera(self, name: str) -> np.ndarray:
        return self.rig.normals[name] @ self.rot[2]

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        idn, res = self.idn, self.res
        canvas = np.zeros((res, res, 4), np.uint8)
        self.draw_body(canvas)
        self.draw_hair_back(canvas)
        _fill(canvas, self["neck"], _rgba(idn.skin, 0.78))
        self.draw_collar(canvas)
        if idn.hair_style not in ("long", "bob", "afro"):  # otherwise the hair covers them
            self.draw_ears(canvas)
        if idn.glasses:  # the arms go behind the face
            for side in "lr":
                _lines(canvas, self[f"temple_{side}"], _rgba(idn.glasses_color), 0.035 * self.unit)
        # Face layer: skin with all features, composited through the face outline.
        outline = _smooth(_hull(np.concatenate([self["jaw"], self["forehead"], self["cheeks"]])), 3, closed=True)
        face_mask = np.zeros((res, res), np.uint8)
        _fill(face_mask, outline, 255)
        x0, y0 = np.maximum(np.floor(outline.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(outline.max(0)).astype(int) + 3, res)
        if x1 > x0 and y1 > y0:  # (the face can be shifted out of the picture)
            face = np.empty((res, res, 4), np.uint8)
            face[y0:y1, x0:x1] = _rgba(idn.skin)
            self.draw_features(face)
            w = face_mask[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
            canvas[y0:y1, x0:x1] = cv2.blendLinear(face[y0:y1, x0:x1], canvas[y0:y1, x0:x1], w, 1.0 - w)
        # Front hair (not face) and glasses go over it.
        if "bangs" in self.rig.parts:
            self.draw_bangs(canvas, face_mask)
        if idn.glasses:
            self.draw_glasses(canvas)
        return canvas, face_mask

    def draw_body(self, canvas):
        # shoulders do not follow the head: they hang below the crop centre
        m, u = self.m, self.unit
        c = _ip(np.array([0.0, 2.6]) @ m[:, :2].T + m[:, 2])
        cv2.ellipse(canvas, (int(c[0]), int(c[1])), (int(2.0 * u * _ONE), int(0.95 * u * _ONE)), 0, 0, 360,
                    _rgba(self.idn.clothes), -1, cv2.LINE_AA, _SHIFT)

    def draw_collar(self, canvas):
        m, idn = self.m, self.idn
        col = np.array([[-0.62, 1.95], [0.0, 2.25], [0.62, 1.95], [0.8, 2.8], [-0.8, 2.8]]) @ m[:, :2].T + m[:, 2]
        _fill(canvas, col, _rgba(idn.clothes, 0.8))
        inner = np.array([[-0.5, 1.98], [0.0, 2.18], [0.5, 1.98], [0.5, 2.02], [0.0, 2.3], [-0.5, 2.02]])
        _fill(canvas, inner @ m[:, :2].T + m[:, 2], _rgba(idn.skin, 0.7))

    def draw_ears(self, canvas):
        skin = self.idn.skin
        for k in (0, 16):
            _fill(canvas, self[f"ear{k}"], _rgba(skin, 0.92))
            _lines(canvas, self[f"ear_in{k}"], _rgba(skin, 0.68), 0.03 * self.unit)

    def draw_hair_back(self, canvas):
        idn, u = self.idn, self.unit
        col = _rgba(idn.hair)
        shell = _hull(self["shell"])
        curly = idn.hair_style in ("curly", "afro")
        if curly:  # bumpy outline
            for p in _resample(shell, 0.17 * u):
                _circle(canvas, p, 0.12 * u, col)
        _fill(canvas, shell, col)
        if idn.hair_style == "bald":
            return
        dark = _rgba(_darker(idn.hair))
        if curly:
            vis = self.faces_camera("curls") > 0.25
            for p in self["curls"][vis]:
                cv2.ellipse(canvas, tuple(int(v) for v in _ip(p)), (int(0.06 * u * _ONE), int(0.05 * u * _ONE)),
                            0, 200, 470, dark, max(1, int(0.02 * u)), cv2.LINE_AA, _SHIFT)
            return
        sheen = self["sheen"][self.faces_camera("sheen") > 0.3]
        if len(sheen) > 1:
            _lines(canvas, sheen, _rgba(_mix(idn.hair, (255, 255, 255), 0.14)), 0.07 * u)
        strands = [_ip(self[f"strand{k}"]) for k in range(9) if self.faces_camera(f"strand{k}") > 0.15]
        if strands:
            cv2.polylines(canvas, strands, False, dark, max(1, round(0.02 * u)), cv2.LINE_AA, _SHIFT)

    def draw_bangs(self, canvas, face_mask):
        idn = self.idn
        pts = self["bangs"]
        _fill(canvas, pts, _rgba(idn.hair))
        _fill(face_mask, pts, 0)
        dark = _rgba(_darker(idn.hair))
        for k in range(4):
            _lines(canvas, self[f"fringe{k}"], dark, 0.02 * self.unit)

    def draw_glasses(self, canvas):
        col, u = _rgba(self.idn.glasses_color), self.unit
        for side in "lr":
            _lines(canvas, self[f"rim_{side}"], col, 0.04 * u, closed=True)
        _lines(canvas, self["bridge"], col, 0.035 * u)

    def draw_features(self, face):
        idn, u, p = self.idn, self.unit, self.p2
        skin = idn.skin
        if "beard" in self.rig.parts:  # stubble: a shadow of darkened hair colour
            stubble = idn.facial_hair == "stubble"
            col = _mix(skin, _mix(idn.hair, (40, 30, 25), 0.5) if stubble else idn.hair, 0.28 if stubble else 0.85)
            _fill(face, self["beard"], _rgba(col))
        if "moustache" in self.rig.parts:
            _fill(face, self["moustache"], _rgba(_mix(skin, idn.hair, 0.92)))
        # soft shading: blushed cheeks, eye sockets, the hollow under the lower lip
        for side in "lr":
            _soft_spot(face, self[f"blush_{side}"][0], (0.2 * u, 0.16 * u), (235, 90, 90, 255), 0.12)
            _soft_spot(face, self[f"socket_{side}"][0], (0.24 * u, 0.11 * u), _rgba(skin, 0.7), 0.6)
        _soft_spot(face, p[57] + (p[57] - p[51]) * 0.45, (0.16 * u, 0.06 * u), _rgba(skin, 0.75), 0.4)
        # nose: the side away from the light is in shadow
        _fill(face, self["nose_shadow_r" if self.light_head[0] < 0 else "nose_shadow_l"], _rgba(skin, 0.86))
        _lines(face, self["nose_base"], _rgba(skin, 0.75), 0.022 * u)
        for k in (32, 34):
            c = p[k] * 0.7 + p[33] * 0.3 + (p[33] - p[30]) * 0.04
            ang = float(np.degrees(np.arctan2(*(p[35] - p[31])[::-1])))
            cv2.ellipse(face, tuple(int(v) for v in _ip(c)), (int(0.045 * u * _ONE), int(0.022 * u * _ONE)),
                        ang, 0, 360, _rgba(skin, 0.42), -1, cv2.LINE_AA, _SHIFT)
        for k in (31, 35):
            _lines(face, self[f"wing{k}"], _rgba(skin, 0.72), 0.022 * u)
            _lines(face, self[f"fold{k}"], _rgba(skin, 0.96 - 0.12 * self.expr[1]), 0.02 * u)
        self.draw_eyes(face)
        brow_col = _rgba(_mix(idn.hair if np.mean(idn.hair) < 150 else _darker(idn.hair), (40, 30, 25), 0.3))
        for side in "lr":
            self.draw_brow(face, self[f"brow_{side}"], brow_col)
        self.draw_mouth(face)

    def draw_brow(self, face, b, color):
        """A ribbon along `b` (outer to inner end), thicker at the inner end."""
        tang = np.gradient(b, axis=0)
        nrm = np.stack([tang[:, 1], -tang[:, 0]], 1)
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-9
        nrm *= -np.sign(nrm[:, 1].sum() + 1e-9)  # point up in the image
        w = (0.025 + 0.035 * np.linspace(0, 1, len(b)) ** 0.7)[:, None] * self.idn.brow_thickness * self.unit
        _fill(face, np.concatenate([b + nrm * w * 0.6, (b - nrm * w * 0.4)[::-1]]), color)

    def draw_eyes(self, face):
        idn, u = self.idn, self.unit
        skin = idn.skin
        lash = (30, 22, 20, 255)
        for side in "lr":
            upper, lower = self[f"upper_{side}"], self[f"lower_{side}"]
            _lines(face, self[f"crease_{side}"], _rgba(skin, 0.78), 0.018 * u)
            poly = np.concatenate([upper, lower[1:-1]])
            opening = cv2.contourArea(poly.astype(np.float32))
            if opening > 1.0:
                c = self[f"iris_{side}"][0] + self.gaze_px
                open_h = np.ptp(poly[:, 1])
                rad = 0.085 * idn.iris_size * idn.eye_size * u

                def eyeball(patch, o, c=c, upper=upper, open_h=open_h, rad=rad):
                    patch[:] = (238, 234, 228, 255)
                    _circle(patch, c - o, rad, _rgba(idn.iris, 0.68))
                    _circle(patch, c - o, rad * 0.8, _rgba(idn.iris))
                    _circle(patch, c - o, rad * 0.42, (14, 10, 10, 255))
                    _circle(patch, c - o + [-0.3 * rad, -0.35 * rad], rad * 0.17, (252, 252, 252, 255))
                    _lines(patch, upper - o, (150, 128, 122, 255), open_h * 0.3)  # lid shadow on the eyeball

                _clipped(face, poly, eyeball)
            _lines(face, lower, _rgba(skin, 0.7), 0.018 * u)
            _lines(face, upper, lash, 0.035 * u)
            # a flick of lashes at the outer corner (36 starts the left eye's upper lid, 45 ends the right one's)
            lid = upper if side == "l" else upper[::-1]
            flick = lid[0] + (lid[0] - lid[-1]) * 0.12 + [0, -0.03 * u]
            _lines(face, np.stack([lid[3], lid[0], flick]), lash, 0.025 * u)

    def draw_mouth(self, face):
        idn, u, p = self.idn, self.unit, self.p2
        lips = idn.lips
        _fill(face, self["lips"], _rgba(lips))
        inner_up, inner_low = self["inner_up"], self["inner_low"]
        _fill(face, np.concatenate([self["lip_top"], inner_up[::-1]]), _rgba(lips, 0.84))
        if np.linalg.norm(p[66] - p[62]) > 0.02 * u:
            inner = np.concatenate([inner_up, inner_low[1:-1]])

            def mouth(patch, o):
                patch[:] = (70, 22, 28, 255)
                # teeth: a white band under the upper lip, and a little of the lower row
                _fill(patch, np.concatenate([inner_up, inner_up[::-1] + [0, 0.085 * u]]) - o, (240, 238, 228, 255))
                _fill(patch, np.concatenate([inner_low, inner_low[::-1] - [0, 0.04 * u]]) - o, (215, 210, 200, 255))
                _lines(patch, inner_up - o + [0, 0.085 * u], (190, 180, 170, 255), 0.012 * u)

            _clipped(face, inner, mouth)
        _lines(face, inner_up, _rgba(lips, 0.5), 0.022 * u)
        hl = p[57] * 0.6 + p[66] * 0.4  # lower lip highlight
        axes = (int(0.07 * u * idn.mouth_width * _ONE), int(0.025 * u * _ONE))
        angle = float(np.degrees(np.arctan2(*(p[54] - p[48])[::-1])))
        cv2.ellipse(face, tuple(int(v) for v in _ip(hl)), axes, angle, 0, 360, _rgba(lips, 1.12), -1, cv2.LINE_AA,
                    _SHIFT)
        for k in (48, 54):
            _circle(face, p[k], 0.018 * u, _rgba(lips, 0.55))


def _resample(poly: np.ndarray, step: float) -> np.ndarray:
    """Points every `step` along a closed polygon."""
    p = np.concatenate([poly, poly[:1]]).astype(np.float64)
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    t = np.arange(0, s[-1], max(step, 1e-6))
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], 1)


# ----------------------------------------------------------------------------------------------------------------
# grid command


def render_grid(faces: SyntheticFaces, identities: int, columns: int, size: int) -> np.ndarray:
    """A (identities * size, columns * size, 3) grid: column 0 is frontal and neutral, the others are samples."""
    rows = []
    for i in range(identities):
        row = [faces.render(i, size, background=(235, 235, 235)).image]
        row += [faces.sample(i, k, size).image for k in range(columns - 1)]
        rows.append(np.concatenate(row, 1))
    return np.concatenate(rows, 0)


def main(argv: list[str] | None = None) -> None:
    from faceswaplab.io import write_image

    ap = argparse.ArgumentParser(prog="python -m faceswaplab.data.synthetic",
                                 description="Write a grid of synthetic identities (rows) x variations (columns).")
    ap.add_argument("--out", required=True, help="output PNG path")
    ap.add_argument("--identities", type=int, default=8, help="rows: identities 0..N-1 (default 8)")
    ap.add_argument("--columns", type=int, default=6, help="frontal neutral render, then N-1 samples (default 6)")
    ap.add_argument("--size", type=int, default=128, help="pixels per face (default 128)")
    ap.add_argument("--seed", type=int, default=0, help="population seed (default 0)")
    args = ap.parse_args(argv)
    if args.identities < 1 or args.columns < 1:
        ap.error("--identities and --columns must be >= 1")
    if not 16 <= args.size <= 1024:
        ap.error("--size must be in [16, 1024]")
    grid = render_grid(SyntheticFaces(args.seed, args.identities), args.identities, args.columns, args.size)
    write_image(args.out, grid)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")


if __name__ == "__main__":
    main()
