"""Face masks from landmarks: the face hull (landmarks plus forehead) and the eye and mouth regions.

Two twins with the same meaning:

* torch (batched, device-agnostic, differentiable almost everywhere): :func:`face_hull_mask`, :func:`region_masks`
  return ``(B, 1, H, W)`` float masks in [0, 1]. They evaluate the signed distance of every pixel centre to the
  convex hull of a point set, so growing/shrinking is an offset of that distance and edges are anti-aliased.
* numpy/cv2 (one image, for blending and the swap command): :func:`face_hull_mask_np`, :func:`region_masks_np`
  return ``(H, W)`` float32 masks in [0, 1]; they evaluate the same distance, only near the face, so they stay
  cheap on full video frames.

Sizes are ``size`` (square) or ``(height, width)``; landmarks are pixel coordinates with pixel centres at integers.
The hull includes the forehead: the brows are raised along the chin-to-brow direction by ``forehead`` times the
chin-to-brow distance, so the mask follows in-plane rotation.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from faceswaplab.faces import template as T

DEFAULT_FOREHEAD = 0.3
DEFAULT_EYE_GROW = 0.25
DEFAULT_MOUTH_GROW = 0.1
CHIN = 8


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))


# ----------------------------------------------------------------------------------------------- point sets


def face_hull_points(landmarks, forehead: float = DEFAULT_FOREHEAD):
    """The points whose convex hull is the face mask: all 68 landmarks plus the brows raised onto the forehead.

    All landmarks, not only the jaw: at large yaw the far mouth corner or eye corner can project outside the jaw
    line. `landmarks` (..., 68, 2) numpy or torch; returns (..., 78, 2) of the same kind.
    """
    brows = landmarks[..., T.BROWS, :]
    chin = landmarks[..., CHIN : CHIN + 1, :]
    up = brows.mean(-2, keepdims=True) - chin  # (..., 1, 2) chin -> brow centre
    raised = brows + forehead * up
    if isinstance(landmarks, torch.Tensor):
        return torch.cat([landmarks, raised], -2)
    return np.concatenate([landmarks, raised], -2)


def _region_point_sets(landmarks):
    """(left eye, right eye, outer mouth) point sets and the widths that scale their growth."""
    eye_l = landmarks[..., T.EYE_LEFT, :]
    eye_r = landmarks[..., T.EYE_RIGHT, :]
    mouth = landmarks[..., T.MOUTH_OUTER, :]
    return eye_l, eye_r, mouth


def _width(points, i: int, j: int):
    d = points[..., i, :] - points[..., j, :]
    return (d**2).sum(-1) ** 0.5


# ------------------------------------------------------------------------------------------------------ torch


def hull_signed_distance(points: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Signed distance (pixels, positive inside) from every pixel centre to the convex hull of `points`.

    points (B, K, 2) -> (B, H, W). The distance is the smallest margin to the hull's edge lines: exact inside and
    beside the edges; outside a corner it is the distance to the nearer edge line, so grown masks have mitred
    rather than rounded corners (hull corners are obtuse: a few percent of the growth). Differentiable in
    `points`; one host sync (the number of hull vertices) per call.
    """
    B, K, _ = points.shape
    H, W = _hw(size)
    p = points.float()
    rel = p[:, None, :, :] - p[:, :, None, :]  # (B, i, j, 2) = p_j - p_i
    # Point i is on the hull iff the directions to all other points fit in a half-turn, i.e. the largest gap
    # between their sorted angles is at least pi; the hull edge leaving i starts right after that gap.
    # O(K^2 log K) per face, no loop over points.
    ang = torch.atan2(rel[..., 1], rel[..., 0])  # (B, i, j)
    other = rel.norm(dim=-1) > 1e-4  # j is neither i nor a duplicate of it
    first = other.float().argmax(-1, keepdim=True)  # (B, i, 1): some valid direction, to stand in for the rest
    ang = torch.where(other, ang, torch.gather(ang, 2, first))
    ang, _ = ang.sort(-1)
    gaps = torch.cat([ang[..., 1:] - ang[..., :-1], ang[..., :1] + 2 * math.pi - ang[..., -1:]], -1)  # (B, i, j)
    widest, at = gaps.max(-1)  # gap after sorted position `at`
    start = torch.gather(ang, 2, ((at + 1) % K)[..., None])[..., 0]  # (B, i): direction of the edge leaving i
    has_edge = (widest >= math.pi - 1e-4) & other.any(-1)  # (B, i): i is on the hull
    e = torch.stack([torch.cos(start), torch.sin(start)], -1)  # (B, K, 2) unit edge directions
    # Keep only the M <= K hull vertices (most points are inside): the per-pixel work scales with M.
    order = torch.argsort(has_edge.to(torch.uint8), dim=1, descending=True, stable=True)
    M = max(1, int(has_edge.sum(1).max()))
    keep = order[:, :M]
    p = torch.gather(p, 1, keep[..., None].expand(-1, -1, 2))
    e = torch.gather(e, 1, keep[..., None].expand(-1, -1, 2))
    any_edge = has_edge.any(-1)
    has_edge = torch.gather(has_edge, 1, keep)
    # Inward unit normal n = (-e_y, e_x) / |e|, so that n . (q - p_i) = cross(e, q - p_i) / |e|.
    n = torch.stack([-e[..., 1], e[..., 0]], -1) / e.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    c = (n * p).sum(-1)  # (B, K)
    big = 1e6
    # Vertices without an edge get a line far outside, so they never win the minimum.
    c = torch.where(has_edge, c, torch.full_like(c, -big))
    ys = torch.arange(H, device=p.device, dtype=p.dtype)
    xs = torch.arange(W, device=p.device, dtype=p.dtype)
    # (B, M, H, W): one affine function per hull edge
    d = n[..., 0, None, None] * xs + n[..., 1, None, None] * ys[:, None] - c[..., None, None]
    out = d.amin(1)  # (B, H, W)
    # Faces without any hull edge (all points equal) get an empty mask.
    return out.masked_fill(~any_edge[:, None, None], -big)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflected borders."""
    if sigma <= 0:
        return x
    r = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    C = x.shape[1]
    pad_h, pad_w = min(r, x.shape[-2] - 1), min(r, x.shape[-1] - 1)
    if pad_h < r or pad_w < r:  # tiny images: fall back to replicate padding of the whole radius
        x = F.pad(x, (r, r, r, r), mode="replicate")
    else:
        x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)
    return x


def _soft(dist: torch.Tensor, grow, blur: float) -> torch.Tensor:
    """Distance (B, H, W) -> anti-aliased mask (B, 1, H, W) grown by `grow` pixels and blurred by `blur` sigma."""
    if not isinstance(grow, torch.Tensor):
        grow = torch.as_tensor(grow, dtype=dist.dtype, device=dist.device)
    grow = grow.reshape(-1, 1, 1) if grow.ndim else grow
    m = (dist + 0.5 + grow).clamp(0.0, 1.0)[:, None]
    return _gaussian_blur(m, blur)


def face_hull_mask(
    landmarks: torch.Tensor,
    size: int | tuple[int, int],
    forehead: float = DEFAULT_FOREHEAD,
    dilate: float = 0.0,
    blur: float = 0.0,
) -> torch.Tensor:
    """Face mask (B, 1, H, W) in [0, 1]: convex hull of the landmarks (B, 68, 2) and the forehead above the brows.

    forehead: how far above the brows the hull reaches, as a fraction of the chin-to-brow distance.
    dilate: grow (> 0) or erode (< 0) by this many pixels. blur: Gaussian sigma in pixels for a feathered edge.
    """
    pts = face_hull_points(landmarks, forehead)
    return _soft(hull_signed_distance(pts, size), dilate, blur)


def region_masks(
    landmarks: torch.Tensor,
    size: int | tuple[int, int],
    eye_grow: float = DEFAULT_EYE_GROW,
    mouth_grow: float = DEFAULT_MOUTH_GROW,
    blur: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eye (both eyes) and mouth regions, each (B, 1, H, W) in [0, 1], from landmarks (B, 68, 2).

    Each region is the hull of its landmarks grown by `eye_grow` times the eye width (corner to corner) or
    `mouth_grow` times the mouth width, so the lids and lips are covered.
    """
    B = landmarks.shape[0]
    eye_l, eye_r, mouth = _region_point_sets(landmarks)
    eyes = torch.cat([eye_l, eye_r], 0)  # (2B, 6, 2)
    eye_w = _width(eyes, 0, 3)  # (2B,)
    d_eyes = hull_signed_distance(eyes, size)
    m_eyes = _soft(d_eyes, eye_grow * eye_w, blur)
    m_eyes = torch.maximum(m_eyes[:B], m_eyes[B:])
    mouth_w = _width(mouth, 0, 6)
    m_mouth = _soft(hull_signed_distance(mouth, size), mouth_grow * mouth_w, blur)
    return m_eyes, m_mouth


# ------------------------------------------------------------------------------------------------------ numpy


def _hull_mask_np(points: np.ndarray, size, grow: float, blur: float) -> np.ndarray:
    """numpy twin of ``_soft(hull_signed_distance(...))``: the same edge-line distance, evaluated only inside
    the hull's bounding box (grown by the reach of `grow` and `blur`), so it stays cheap on large frames."""
    H, W = _hw(size)
    out = np.zeros((H, W), np.float32)
    hull = cv2.convexHull(np.asarray(points, np.float32).reshape(-1, 2)).reshape(-1, 2).astype(np.float64)
    e = np.roll(hull, -1, 0) - hull
    length = np.linalg.norm(e, axis=1)
    hull, e, length = hull[length > 1e-4], e[length > 1e-4], length[length > 1e-4]
    if len(hull) < 2:
        return out
    n = np.stack([-e[:, 1], e[:, 0]], 1) / length[:, None]
    c = (n * hull).sum(1)
    if (n @ hull.mean(0) - c).mean() < 0:  # make the normals point inwards whatever the hull's orientation
        n, c = -n, -c
    reach = max(grow, 0.0) + 1.0 + (math.ceil(3.0 * blur) if blur > 0 else 0)
    x0, y0 = np.floor(hull.min(0) - reach).astype(int)
    x1, y1 = np.ceil(hull.max(0) + reach).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W - 1), min(y1, H - 1)
    if x1 < x0 or y1 < y0:
        return out
    xs = np.arange(x0, x1 + 1, dtype=np.float64)
    ys = np.arange(y0, y1 + 1, dtype=np.float64)
    d = (n[:, 0, None, None] * xs + n[:, 1, None, None] * ys[:, None] - c[:, None, None]).min(0)  # (h, w)
    out[y0 : y1 + 1, x0 : x1 + 1] = np.clip(d + 0.5 + grow, 0.0, 1.0)
    if blur > 0:
        r = max(1, math.ceil(3.0 * blur))
        out = cv2.GaussianBlur(out, (2 * r + 1, 2 * r + 1), blur, borderType=cv2.BORDER_REFLECT_101)
    return out


def face_hull_mask_np(
    landmarks: np.ndarray,
    size: int | tuple[int, int],
    forehead: float = DEFAULT_FOREHEAD,
    dilate: float = 0.0,
    blur: float = 0.0,
) -> np.ndarray:
    """numpy twin of :func:`face_hull_mask` for one face: landmarks (68, 2) -> (H, W) float32 in [0, 1]."""
    pts = face_hull_points(np.asarray(landmarks, np.float64), forehead)
    return _hull_mask_np(pts, size, dilate, blur)


def region_masks_np(
    landmarks: np.ndarray,
    size: int | tuple[int, int],
    eye_grow: float = DEFAULT_EYE_GROW,
    mouth_grow: float = DEFAULT_MOUTH_GROW,
    blur: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of :func:`region_masks` for one face: landmarks (68, 2) -> eyes, mouth, each (H, W) float32."""
    lm = np.asarray(landmarks, np.float64)
    eye_l, eye_r, mouth = _region_point_sets(lm)
    eyes = np.maximum(
        _hull_mask_np(eye_l, size, eye_grow * float(_width(eye_l, 0, 3)), blur),
        _hull_mask_np(eye_r, size, eye_grow * float(_width(eye_r, 0, 3)), blur),
    )
    m_mouth = _hull_mask_np(mouth, size, mouth_grow * float(_width(mouth, 0, 6)), blur)
    return eyes, m_mouth
