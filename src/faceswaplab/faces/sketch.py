"""Landmark sketches: the 68-point polylines (``template.CONTOURS``) drawn as an image, the pix2pix input.

:func:`draw_landmark_sketch` is pure torch (batched, device-agnostic, differentiable in the landmarks near the
lines): each pixel's coverage is ``clamp(thickness / 2 + 0.5 - distance_to_nearest_segment, 0, 1)``, a box filter
of a line ``thickness`` pixels wide, so lines are anti-aliased and sub-pixel accurate.
:func:`draw_landmark_sketch_np` is an OpenCV twin for visualisation.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from faceswaplab.faces import template as T

#: Channel names of a ``channels="parts"`` sketch, one per entry of ``template.CONTOURS``.
PART_NAMES = ("jaw", "brow_left", "brow_right", "nose_bridge", "nose_bottom", "eye_left", "eye_right",
              "mouth_outer", "mouth_inner")


def _hw(size) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))


def _segments(indices: list[int], closed: bool) -> tuple[list[int], list[int]]:
    a = list(indices[:-1])
    b = list(indices[1:])
    if closed:
        a.append(indices[-1])
        b.append(indices[0])
    return a, b


SEGMENTS: tuple[tuple[list[int], list[int]], ...] = tuple(_segments(idx, closed) for idx, closed in T.CONTOURS)


def num_channels(channels: str) -> int:
    """Number of output channels of a sketch: 1 for ``"single"``, one per contour for ``"parts"``."""
    if channels == "single":
        return 1
    if channels == "parts":
        return len(T.CONTOURS)
    raise ValueError(f"channels must be 'single' or 'parts', got {channels!r}")


def draw_landmark_sketch(
    landmarks: torch.Tensor,
    size: int | tuple[int, int],
    thickness: float = 1.0,
    channels: str = "single",
) -> torch.Tensor:
    """Draw landmarks (B, 68, 2) as a sketch (B, C, H, W) in [-1, 1]: lines +1, background -1.

    channels: ``"single"`` (C = 1, all contours) or ``"parts"`` (C = 9, one channel per contour, in the order of
    ``PART_NAMES``). thickness: line width in pixels (may be fractional).
    """
    C = num_channels(channels)
    H, W = _hw(size)
    lm = landmarks.float()
    ys = torch.arange(H, device=lm.device, dtype=lm.dtype)
    xs = torch.arange(W, device=lm.device, dtype=lm.dtype)
    half = thickness / 2.0 + 0.5
    layers = []
    # One contour at a time keeps memory at (B, segments, H, W) for the longest contour (16 segments).
    for ia, ib in SEGMENTS:
        a, b = lm[:, ia], lm[:, ib]  # (B, S, 2)
        e = b - a
        ex, ey = e[..., 0, None, None], e[..., 1, None, None]  # (B, S, 1, 1)
        e2 = (ex * ex + ey * ey).clamp_min(1e-12)
        rx = xs - a[..., 0, None, None]  # (B, S, 1, W): x offsets are shared by every row
        ry = ys[:, None] - a[..., 1, None, None]  # (B, S, H, 1)
        dot = rx * ex + ry * ey  # (B, S, H, W)
        t = (dot / e2).clamp(0.0, 1.0)
        # |r - t e|^2 = |r|^2 - t (2 r.e - t |e|^2); the square root is taken once, after the minimum.
        d2 = (rx * rx + ry * ry) - t * (2.0 * dot - t * e2)
        d = (d2.amin(1).clamp_min(0.0) + 1e-8).sqrt()  # (B, H, W)
        layers.append((half - d).clamp(0.0, 1.0))
    cov = torch.stack(layers, 1)  # (B, 9, H, W)
    if C == 1:
        cov = cov.amax(1, keepdim=True)
    return cov * 2.0 - 1.0


def draw_landmark_sketch_np(
    landmarks: np.ndarray,
    size: int | tuple[int, int],
    thickness: int = 1,
    channels: str = "single",
) -> np.ndarray:
    """OpenCV twin of :func:`draw_landmark_sketch` for one face: (68, 2) -> (H, W) or (H, W, 9) uint8 (lines 255)."""
    C = num_channels(channels)
    H, W = _hw(size)
    shift = 4
    pts = np.round(np.asarray(landmarks, np.float64) * (1 << shift)).astype(np.int32)
    out = np.zeros((C, H, W), np.uint8)
    for c, (indices, closed) in enumerate(T.CONTOURS):
        layer = out[c if C > 1 else 0]
        cv2.polylines(layer, [pts[indices]], closed, 255, max(1, int(round(thickness))), cv2.LINE_AA, shift)
    return out[0] if C == 1 else np.ascontiguousarray(out.transpose(1, 2, 0))
