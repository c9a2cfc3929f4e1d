"""Drawing helpers on RGBA uint8 canvases with float pixel coordinates (anti-aliased, sub-pixel OpenCV calls)."""

from __future__ import annotations

import cv2
import numpy as np

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


def _resample(poly: np.ndarray, step: float) -> np.ndarray:
    """Points every `step` along a closed polygon."""
    p = np.concatenate([poly, poly[:1]]).astype(np.float64)
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    t = np.arange(0, s[-1], max(step, 1e-6))
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], 1)
