"""Things in front of the face: a hand, a microphone, hair strands, sunglasses or a mug, drawn over a render.

Each occluder is drawn from the face's 68 landmarks (so it lands on the face whatever the pose) on its own
supersampled RGBA layer, which the renderer lays over the finished image; the layer's alpha is exact ground truth
for what the occluder hides, so the visible face is ``face mask * (1 - alpha)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceswaplab.data.synthetic.draw import _circle, _fill, _lines, _mix, _rgba
from faceswaplab.data.synthetic.identity import _SKIN

OCCLUDERS = ("hand", "microphone", "hair", "sunglasses", "mug")


def _rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _ellipse(c, rx: float, ry: float, angle: float = 0.0, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([rx * np.cos(t), ry * np.sin(t)], 1) @ _rot(angle).T + c


def _bezier(p0, p1, p2, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _face_frame(lm: np.ndarray):
    """Face centre, width (jaw end to jaw end) and unit 'down' direction (brows to chin) in pixels."""
    width = float(np.linalg.norm(lm[16] - lm[0]))
    down = lm[8] - lm[17:27].mean(0)
    down = down / (np.linalg.norm(down) + 1e-9)
    return lm[27:36].mean(0), width, down


def _hand(layer, lm, rng):
    centre, w, down = _face_frame(lm)
    skin = np.array(_SKIN[rng.integers(len(_SKIN))], np.float64) * rng.uniform(0.85, 1.05)
    col, dark = _rgba(skin), _rgba(skin, 0.72)
    # the palm covers the mouth, a cheek or an eye; the fingers point up and sideways
    target = lm[rng.choice([62, 2, 14, 37, 44, 33])] + rng.normal(0, 0.06 * w, 2)
    up = -down @ _rot(rng.uniform(-0.9, 0.9)).T
    side = np.array([-up[1], up[0]])
    palm = target - up * 0.12 * w
    arm_end = palm - up * 2.0 * w  # the forearm leaves the picture
    _lines(layer, np.stack([palm, arm_end]), col, 0.42 * w)
    _fill(layer, _ellipse(palm, 0.24 * w, 0.2 * w, np.arctan2(up[1], up[0])), col)
    for k, (off, length) in enumerate(zip((-0.15, -0.05, 0.05, 0.15), (0.28, 0.33, 0.31, 0.24))):
        base = palm + side * off * w + up * 0.12 * w
        tip = base + (up + side * off * 0.8) * length * w
        _lines(layer, np.stack([base, tip]), col, 0.095 * w)
        if k:
            _lines(layer, np.stack([base - side * 0.05 * w, base - side * 0.05 * w + up * 0.12 * w]), dark,
                   0.012 * w)
    thumb = palm + side * 0.22 * w * rng.choice([-1, 1])
    _lines(layer, np.stack([palm, thumb + up * 0.18 * w]), col, 0.1 * w)


def _microphone(layer, lm, rng):
    _, w, down = _face_frame(lm)
    head = lm[rng.choice([57, 48, 54, 8])] + rng.normal(0, 0.05 * w, 2)
    along = down @ _rot(rng.uniform(-0.6, 0.6)).T
    r = rng.uniform(0.13, 0.19) * w
    body = _rgba([rng.integers(20, 70)] * 3)
    _lines(layer, np.stack([head, head + along * 2.5 * w]), body, 0.16 * w)
    _lines(layer, np.stack([head + along * r, head + along * 1.5 * r]), _rgba((150, 150, 155)), 0.2 * w)
    _circle(layer, head, r, _rgba((120, 122, 128)))
    for k in range(-2, 3):  # the grille
        _lines(layer, np.stack([head + [k * r / 3, -r * 0.9], head + [k * r / 3, r * 0.9]]), _rgba((70, 70, 76)),
               0.012 * w)


def _hair(layer, lm, rng):
    _, w, down = _face_frame(lm)
    colour = _rgba(_mix((rng.integers(10, 90),) * 3, (150, 90, 40), rng.uniform(0, 0.8)))
    top = lm[17:27].mean(0) - down * 0.45 * w
    for _ in range(int(rng.integers(3, 7))):
        start = top + rng.normal(0, 0.18 * w, 2)
        end = lm[rng.choice([2, 4, 8, 12, 14, 48, 54])] + rng.normal(0, 0.1 * w, 2) + down * 0.2 * w
        mid = (start + end) / 2 + rng.normal(0, 0.2 * w, 2)
        _lines(layer, _bezier(start, mid, end), colour, rng.uniform(0.025, 0.06) * w)


def _sunglasses(layer, lm, rng):
    _, w, _ = _face_frame(lm)
    tint = _rgba((int(rng.integers(5, 50)), int(rng.integers(5, 40)), int(rng.integers(5, 60))))
    frame = _rgba((int(rng.integers(0, 60)),) * 3)
    eyes = [lm[36:42].mean(0), lm[42:48].mean(0)]
    angle = float(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
    size = rng.uniform(0.9, 1.2)
    for c in eyes:
        lens = _ellipse(c + [0, 0.02 * w], 0.17 * w * size, 0.12 * w * size, angle)
        _fill(layer, lens, tint)
        _lines(layer, lens, frame, 0.025 * w, closed=True)
    _lines(layer, np.stack([eyes[0] + [0.15 * w * size, 0], eyes[1] - [0.15 * w * size, 0]]), frame, 0.03 * w)


def _mug(layer, lm, rng):
    _, w, down = _face_frame(lm)
    colour = tuple(int(v) for v in rng.integers(40, 240, 3))
    c = lm[rng.choice([57, 62, 48, 54])] - down * rng.uniform(0.0, 0.15) * w + rng.normal(0, 0.05 * w, 2)
    side = np.array([-down[1], down[0]])
    hw, hh = rng.uniform(0.22, 0.3) * w, 0.8 * w
    top = c - down * 0.1 * w
    body = np.stack([top - side * hw, top + side * hw, top + side * hw + down * hh, top - side * hw + down * hh])
    _fill(layer, body, _rgba(colour))
    _fill(layer, _ellipse(top, hw, 0.06 * w, np.arctan2(side[1], side[0])), _rgba(colour, 0.6))
    handle = top + side * hw * rng.choice([-1, 1]) * 1.25 + down * 0.3 * w
    _lines(layer, _ellipse(handle, 0.13 * w, 0.16 * w), _rgba(colour, 0.85), 0.05 * w, closed=True)


_DRAW = {"hand": _hand, "microphone": _microphone, "hair": _hair, "sunglasses": _sunglasses, "mug": _mug}


def draw_occluder(kind: str, landmarks: np.ndarray, size: int, ss: int, rng: np.random.Generator):
    """An occluder of `kind` over the face with `landmarks` (68, 2) output pixels, drawn at `ss` x supersampling:
    ``(rgb premultiplied by alpha (size, size, 3) float32, alpha (size, size) float32 in [0, 1])``."""
    if kind not in _DRAW:
        raise ValueError(f"unknown occluder {kind!r}, expected one of {OCCLUDERS}")
    layer = np.zeros((size * ss, size * ss, 4), np.uint8)
    _DRAW[kind](layer, landmarks * ss + (ss - 1) / 2.0, rng)
    if ss > 1:
        layer = cv2.resize(layer, (size, size), interpolation=cv2.INTER_AREA)
    return layer[..., :3].astype(np.float32), layer[..., 3].astype(np.float32) * (1.0 / 255.0)
