"""Similarity alignment of faces to the canonical template, and the inverse mapping back into the frame.

All transforms are (2, 3) affine matrices acting on (x, y) pixel coordinates with pixel centres at integers,
the convention of ``cv2.warpAffine``: ``p_crop = M[:, :2] @ p_image + M[:, 2]``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from faceswaplab.faces import template

BORDERS = {
    "replicate": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "constant": cv2.BORDER_CONSTANT,
}


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, translation) taking `src` onto `dst`, (2, 3).

    `src` and `dst` are (N, 2) corresponding points, N >= 2 (Umeyama's closed form, reflections excluded).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two (N>=2, 2) point sets of the same shape, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("source points are degenerate (all equal)")
    cov = d.T @ s / len(src)  # (2, 2)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1.0  # the best orthogonal map is a reflection: take the closest rotation instead
    r = u @ e @ vt
    scale = (sig * np.diag(e)).sum() / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - scale * r @ mu_s
    return m


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine map to (..., 2) points."""
    points = np.asarray(points, np.float64)
    return points @ m[:, :2].T + m[:, 2]


def invert_transform(m: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine map."""
    a = np.asarray(m, np.float64)[:, :2]
    inv = np.linalg.inv(a)
    return np.concatenate([inv, -inv @ m[:, 2:3]], axis=1)


def alignment_transform(landmarks: np.ndarray, size: int, margin: float = template.DEFAULT_MARGIN) -> np.ndarray:
    """The (2, 3) similarity mapping image pixels to a `size` crop, fitted on the INNER landmarks."""
    dst = template.canonical_landmarks(size, margin)
    idx = template.INNER
    return similarity_transform(np.asarray(landmarks)[idx], dst[idx])


def warp(image: np.ndarray, m: np.ndarray, size: int, border: str = "replicate") -> np.ndarray:
    """Resample `image` (H, W, C) into a `size` x `size` output through the affine map `m` (image -> output).

    Only the region the output sees is touched, and strong downscaling is anti-aliased by an area resize
    first, so that cropping a small face from an 8K frame is cheap and clean.
    """
    m = np.asarray(m, np.float64)
    h, w = image.shape[:2]
    inv = invert_transform(m)
    corners = transform_points(np.array([[-1, -1], [size, -1], [-1, size], [size, size]], np.float64), inv)
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:  # the crop lies entirely outside the image: sample the nearest border
        x0, y0, x1, y1 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1), 0, 0
        x1, y1 = x0 + 1, y0 + 1
    roi = image[y0:y1, x0:x1]
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])
    m_roi = _compose(m, shift)  # roi pixels -> output pixels
    scale = np.sqrt(abs(np.linalg.det(m[:, :2])))
    if scale < 0.5 and min(roi.shape[:2]) > 4:
        f = 2.0 * scale  # shrink to about twice the output resolution; the warp then interpolates cleanly
        rw, rh = max(int(round(roi.shape[1] * f)), 1), max(int(round(roi.shape[0] * f)), 1)
        fx, fy = rw / roi.shape[1], rh / roi.shape[0]
        roi = cv2.resize(roi, (rw, rh), interpolation=cv2.INTER_AREA)
        # Pixel-centre convention: x_small = (x + 0.5) * fx - 0.5.
        down = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5]])
        m_roi = _compose(m_roi, invert_transform(down))
    return cv2.warpAffine(roi, m_roi, (size, size), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border])


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine map `x -> a(b(x))`."""
    return np.concatenate([a[:, :2] @ b[:, :2], a[:, :2] @ b[:, 2:3] + a[:, 2:3]], axis=1)


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = 256,
    margin: float = template.DEFAULT_MARGIN,
    border: str = "replicate",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop the face with these 68 landmarks to the canonical framing.

    Returns ``(crop (size, size, 3) uint8, transform (2, 3) image -> crop, crop_landmarks (68, 2))``.
    """
    m = alignment_transform(landmarks, size, margin)
    crop = warp(image, m, size, border)
    return crop, m, transform_points(landmarks, m)


def paste_back(
    frame: np.ndarray,
    crop: np.ndarray,
    transform: np.ndarray,
    mask: np.ndarray | None = None,
    feather: float = 0.05,
) -> np.ndarray:
    """Blend an (edited) aligned `crop` back into `frame` (H, W, 3) uint8; returns a new frame.

    `transform` is the image -> crop map returned by `align_face`. `mask` is an optional (size, size) float
    weight in [0, 1] in crop pixels (e.g. a face mask); without one the whole crop is used. Its edge is feathered
    by `feather` times the crop size so that no seam shows.
    """
    h, w = frame.shape[:2]
    size = crop.shape[0]
    if mask is None:
        mask = np.ones((size, size), np.float32)
        b = max(int(round(feather * size)), 1)
        mask[:b], mask[-b:], mask[:, :b], mask[:, -b:] = 0, 0, 0, 0
    mask = np.asarray(mask, np.float32)
    if feather > 0:
        k = max(int(round(feather * size)) | 1, 3)
        mask = cv2.GaussianBlur(mask, (k, k), 0)
    inv = invert_transform(transform)
    warped = cv2.warpAffine(crop, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
    out = frame.astype(np.float32) * (1.0 - alpha) + warped.astype(np.float32) * alpha
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def similarity_transform_batch(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Batched, differentiable :func:`similarity_transform`: src (B, N, 2), dst (N, 2) or (B, N, 2) -> (B, 2, 3).

    In 2-D the least-squares similarity is linear in ``M = [[a, -b], [b, a]]``, so no SVD is needed.
    """
    dst = dst.to(src).expand_as(src)
    mu_s, mu_d = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    s, d = src - mu_s, dst - mu_d  # (B, N, 2)
    var = (s**2).sum((1, 2)).clamp_min(1e-12)
    a = (s * d).sum((1, 2)) / var
    b = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(1) / var
    rot = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], 1)  # (B, 2, 2)
    t = mu_d[:, 0] - (rot @ mu_s[:, 0, :, None])[..., 0]
    return torch.cat([rot, t[..., None]], 2)


def alignment_transform_batch(
    landmarks: torch.Tensor, size: int, margin: float = template.DEFAULT_MARGIN
) -> torch.Tensor:
    """Batched :func:`alignment_transform`: landmarks (B, 68, 2) pixels -> (B, 2, 3) maps image -> `size` crop."""
    dst = torch.as_tensor(template.canonical_landmarks(size, margin)[template.INNER], dtype=torch.float32)
    return similarity_transform_batch(landmarks[:, template.INNER].float(), dst)


def invert_transform_batch(m: torch.Tensor) -> torch.Tensor:
    """The inverses of (B, 2, 3) affine maps."""
    inv = torch.linalg.inv(m[:, :, :2])
    return torch.cat([inv, -(inv @ m[:, :, 2:])], 2)
