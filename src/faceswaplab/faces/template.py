"""The 68-point face template (iBUG-300W order) shared by the renderer, alignment and pose estimation.

Coordinates of the 3D mean face: x to the image right, y down, z towards the camera; one unit is half the
face width at the ears (jaw points 0 and 16 sit at x = -1 and x = +1), the eye corners lie on y = 0, z = 0.
"Left" and "right" below are as seen in the image, so point 0 and the first eye (36-41) are the subject's right.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 68

# Index groups of the iBUG-300W 68-point scheme.
# Lists, so that `landmarks[..., GROUP, :]` indexes numpy arrays and torch tensors alike.
JAW = list(range(0, 17))
BROW_LEFT = list(range(17, 22))
BROW_RIGHT = list(range(22, 27))
NOSE_BRIDGE = list(range(27, 31))
NOSE_BOTTOM = list(range(31, 36))
EYE_LEFT = list(range(36, 42))
EYE_RIGHT = list(range(42, 48))
MOUTH_OUTER = list(range(48, 60))
MOUTH_INNER = list(range(60, 68))
BROWS = BROW_LEFT + BROW_RIGHT
NOSE = NOSE_BRIDGE + NOSE_BOTTOM
EYES = EYE_LEFT + EYE_RIGHT
MOUTH = MOUTH_OUTER + MOUTH_INNER
# Points that move little with the jaw and are stable across detectors: used to estimate alignments.
INNER = list(range(17, 68))

# Polylines drawn by landmark sketches: (indices, closed).
CONTOURS: tuple[tuple[list[int], bool], ...] = (
    (JAW, False),
    (BROW_LEFT, False),
    (BROW_RIGHT, False),
    (NOSE_BRIDGE, False),
    (NOSE_BOTTOM, False),
    (EYE_LEFT, True),
    (EYE_RIGHT, True),
    (MOUTH_OUTER, True),
    (MOUTH_INNER, True),
)

# Horizontal mirror permutation: flipping an image maps landmark i to FLIP_PERMUTATION[i].
FLIP_PERMUTATION = np.array(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + list(range(27, 31))
    + list(range(35, 30, -1))
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)


def _mean_face_3d() -> np.ndarray:
    pts = np.zeros((NUM_LANDMARKS, 3), np.float64)
    # Jaw: from the ear (eye height) down round the chin; the sides are nearly straight, the chin rounded.
    t = np.linspace(0.0, np.pi, 17)
    s = np.sin(t)
    pts[JAW, 0] = -np.cos(t) * (1.0 - 0.28 * s**3)
    pts[JAW, 1] = -0.05 + 1.55 * s**1.25
    pts[JAW, 2] = -0.85 + 0.95 * s**2
    # Brows: arched, thicker at the inner end (drawn by the renderer).
    bx = np.array([-0.86, -0.70, -0.52, -0.34, -0.16])
    by = np.array([-0.30, -0.40, -0.44, -0.42, -0.36])
    bz = np.array([-0.05, 0.06, 0.12, 0.16, 0.17])
    pts[BROW_LEFT] = np.stack([bx, by, bz], 1)
    pts[BROW_RIGHT] = np.stack([-bx[::-1], by[::-1], bz[::-1]], 1)
    # Nose bridge from between the eyes to the tip, then the nostril base.
    pts[NOSE_BRIDGE] = [[0, -0.08, 0.12], [0, 0.14, 0.26], [0, 0.36, 0.40], [0, 0.56, 0.55]]
    pts[NOSE_BOTTOM] = [[-0.21, 0.66, 0.28], [-0.11, 0.70, 0.36], [0, 0.72, 0.40], [0.11, 0.70, 0.36], [0.21, 0.66, 0.28]]
    # Eyes: outer corner, upper lid (2), inner corner, lower lid (2).
    eye = np.array([[-0.72, 0.0, -0.06], [-0.59, -0.075, 0.0], [-0.42, -0.075, 0.01],
                    [-0.28, 0.0, 0.0], [-0.42, 0.055, 0.01], [-0.59, 0.055, 0.0]])
    pts[EYE_LEFT] = eye
    right = eye * [-1, 1, 1]
    pts[EYE_RIGHT] = right[[3, 2, 1, 0, 5, 4]]
    # Mouth: outer lip from the left corner clockwise, then the inner lip.
    pts[MOUTH_OUTER] = [[-0.40, 1.00, 0.20], [-0.26, 0.93, 0.30], [-0.10, 0.89, 0.36], [0, 0.905, 0.37],
                        [0.10, 0.89, 0.36], [0.26, 0.93, 0.30], [0.40, 1.00, 0.20], [0.26, 1.09, 0.28],
                        [0.10, 1.13, 0.33], [0, 1.14, 0.34], [-0.10, 1.13, 0.33], [-0.26, 1.09, 0.28]]
    pts[MOUTH_INNER] = [[-0.34, 1.00, 0.22], [-0.10, 0.975, 0.31], [0, 0.975, 0.32], [0.10, 0.975, 0.31],
                        [0.34, 1.00, 0.22], [0.10, 1.015, 0.31], [0, 1.015, 0.32], [-0.10, 1.015, 0.31]]
    return pts


MEAN_FACE_3D: np.ndarray = _mean_face_3d()
MEAN_FACE_3D.setflags(write=False)


def mean_face_2d() -> np.ndarray:
    """The frontal (orthographic) projection of the 3D template, (68, 2), in template units."""
    return MEAN_FACE_3D[:, :2].copy()


# Crop framing shared by alignment (real faces) and the synthetic renderer, so that both give the same
# crops: the crop is centred on this template point and spans 2 * CROP_HALF_WIDTH * (1 + margin) units.
CROP_CENTER = (0.0, 0.25)
CROP_HALF_WIDTH = 1.25
DEFAULT_MARGIN = 0.25


def template_to_crop(size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The (2, 3) affine map from template units to pixels of a `size` x `size` crop.

    Pixel centres sit at integer coordinates, so the crop spans [-0.5, size - 0.5] on both axes.
    """
    half = CROP_HALF_WIDTH * (1.0 + margin)
    s = size / (2.0 * half)
    c = (size - 1) / 2.0
    return np.array([[s, 0.0, c - s * CROP_CENTER[0]], [0.0, s, c - s * CROP_CENTER[1]]])


def canonical_landmarks(size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Where the 68 landmarks of a frontal, neutral mean face fall in an aligned crop, (68, 2) pixels."""
    m = template_to_crop(size, margin)
    return mean_face_2d() @ m[:, :2].T + m[:, 2]
