"""Skin tone as the individual typology angle (ITA; Chardon, Cretois and Hourseau 1991), the colorimetric scale
dermatology uses to group skin colours, with the six groups of Del Bino and Bernerd (2013).

    ITA = arctan((L* - 50) / b*) in degrees, from the CIELAB colour of the skin (D65).

Here L* and b* are the medians over a face's skin pixels: inside the jaw-and-brow outline of the 68 landmarks, outside
the eyes, brows, nostrils and lips (a median, so hair strands, specular highlights and shadows move it little).
The benchmark groups its pairs by the target's ITA (``fairness.md``); on the synthetic faces the estimate is checked
against the renderer's known skin colours (``tests/test_fairness.py``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

# (name, lowest ITA of the group in degrees), lightest first (Del Bino and Bernerd 2013).
ITA_GROUPS = (("very light", 55.0), ("light", 41.0), ("intermediate", 28.0), ("tan", 10.0), ("brown", -30.0),
              ("dark", -math.inf))

_OUTLINE = list(range(0, 17)) + list(range(26, 16, -1))  # jaw, then the brows right to left: the face's outline
_HOLES = (list(range(17, 22)) + list(range(39, 35, -1)),  # right brow and eye
          list(range(22, 27)) + list(range(45, 41, -1)),  # left brow and eye
          list(range(31, 36)),  # nostrils
          list(range(48, 60)))  # lips


def ita_from_lab(lightness, b) -> np.ndarray:
    """ITA in degrees from CIELAB L* (0..100) and b*.

    >>> ita_from_lab(50.0 + math.tan(math.radians(30)) * 20, 20.0).round(3)
    np.float64(30.0)
    """
    return np.degrees(np.arctan2(np.asarray(lightness, np.float64) - 50.0, np.asarray(b, np.float64)))


def ita_of_rgb(rgb) -> float:
    """ITA of one sRGB colour (three 0..255 values)."""
    lab = cv2.cvtColor(np.asarray(rgb, np.float32).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2LAB)[0, 0]
    return float(ita_from_lab(lab[0], lab[2]))


def skin_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of the skin pixels of one face from its (68, 2) pixel landmarks."""
    mask = np.zeros(size, np.uint8)
    if not np.isfinite(landmarks).all():
        return mask.astype(bool)
    pts = np.round(landmarks).astype(np.int32)
    cv2.fillPoly(mask, [pts[_OUTLINE]], 1)
    for hole in _HOLES:
        cv2.fillPoly(mask, [cv2.convexHull(pts[hole])], 0)
    return mask.astype(bool)


def individual_typology_angle(images, landmarks) -> torch.Tensor:
    """ITA in degrees of each face, (N,), from images (N, 3, H, W) in [-1, 1] (or (N, H, W, 3) uint8) and their
    (N, 68, 2) pixel landmarks; NaN where the landmarks are missing or leave no skin pixel."""
    imgs = torch.as_tensor(images)
    if imgs.dtype == torch.uint8:
        rgb = imgs.numpy().astype(np.float32) / 255.0  # (N, H, W, 3)
    else:
        rgb = ((imgs.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    lms = torch.as_tensor(landmarks).detach().cpu().double().numpy()
    out = np.full(len(rgb), np.nan)
    for i, (im, lm) in enumerate(zip(rgb, lms)):
        m = skin_mask(lm, im.shape[:2])
        if m.any():
            lab = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2LAB)[m]  # (P, 3): L* 0..100, a*, b*
            out[i] = ita_from_lab(np.median(lab[:, 0]), np.median(lab[:, 2]))
    return torch.as_tensor(out)


def ita_group(angle: float) -> str:
    """The skin-tone group of an ITA value (``"unknown"`` for NaN).

    >>> [ita_group(a) for a in (60, 45, 30, 20, 0, -40, float("nan"))]
    ['very light', 'light', 'intermediate', 'tan', 'brown', 'dark', 'unknown']
    """
    if not math.isfinite(angle):
        return "unknown"
    return next(name for name, lowest in ITA_GROUPS if angle > lowest)
