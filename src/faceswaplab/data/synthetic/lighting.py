"""Light and background of a render: their parameters, random draws, the background image and head shading."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceswaplab.data.synthetic.shape import _PIVOT


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
