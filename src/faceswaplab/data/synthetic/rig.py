"""The rig of an identity: named 3D curves (hair, ears, lids, lips, glasses, ...) that a render projects and draws.

Curves are either fixed in the head frame or linear in the 68 expressive landmarks, so one sparse linear map
evaluates them all for any expression.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from faceswaplab.data.synthetic.identity import Identity
from faceswaplab.data.synthetic.shape import _neutral_face
from faceswaplab.faces import template as T


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
