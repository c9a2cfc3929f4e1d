"""Delaunay triangulation and piecewise-affine warping of images between two sets of landmarks.

Points are (x, y) pixel coordinates with pixel centres at integers (the library-wide convention, which is also
OpenCV's); sizes are an int (square) or (height, width), as in :mod:`faceswaplab.faces.masks`. Everything here
is numpy + OpenCV and works on single images; batch code loops over it.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceswaplab.faces import masks
from faceswaplab.faces import template as T


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """`size` as (height, width); an int means a square."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def border_points(size: int | tuple[int, int], per_side: int = 3) -> np.ndarray:
    """`per_side` points along each side of an image of `size`, corners included, (4 * (per_side - 1), 2).

    Added to the landmarks of both images, they anchor the mesh so that it covers the whole frame.
    """
    h, w = _hw(size)
    xs = np.linspace(0.0, w - 1.0, per_side)
    ys = np.linspace(0.0, h - 1.0, per_side)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs[::-1], np.full_like(xs, h - 1.0)], 1)
    right = np.stack([np.full_like(ys, w - 1.0), ys], 1)
    left = np.stack([np.zeros_like(ys), ys[::-1]], 1)
    # Drop each side's last point: it is the next side's first.
    return np.concatenate([top[:-1], right[:-1], bottom[:-1], left[:-1]]).astype(np.float32)


def mesh_points(landmarks: np.ndarray, size: int | tuple[int, int], forehead: float = masks.DEFAULT_FOREHEAD,
                border: bool = True) -> np.ndarray:
    """The 68 landmarks, the brows raised onto the forehead and the image border points, (P, 2).

    The raised brows are the forehead vertices of the face hull mask (:func:`masks.face_hull_points` with the same
    `forehead`), so a mesh over these points covers that mask exactly; `forehead=0` leaves them out, and so does
    `border=False` the border points. The first 68 rows are the landmarks; the layout depends only on the options,
    so two faces give corresponding point sets for :func:`piecewise_affine_warp`.
    """
    lm = np.asarray(landmarks, np.float32)
    if lm.shape != (T.NUM_LANDMARKS, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    parts = [lm]
    if forehead > 0:
        parts.append(masks.face_hull_points(lm.astype(np.float64), forehead)[-len(T.BROWS):])
    if border:
        parts.append(border_points(size))
    return np.concatenate(parts).astype(np.float32)


def triangulate(points: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Delaunay triangles over `points` (N, 2) of an image of `size` (int or (height, width)), (T, 3) int64.

    Each row indexes three points. Points may lie outside the image; a point repeating an earlier one (such as
    closed-lip landmarks) is merged into the first and takes part in no triangle.
    """
    pts = np.asarray(points, np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise ValueError(f"expected (N >= 3, 2) points, got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or infinity")
    h, w = _hw(size)
    # The subdivision's rectangle must hold every point, including points off the image.
    x0 = int(np.floor(min(0.0, pts[:, 0].min()))) - 1
    y0 = int(np.floor(min(0.0, pts[:, 1].min()))) - 1
    x1 = int(np.ceil(max(w, pts[:, 0].max()))) + 2
    y1 = int(np.ceil(max(h, pts[:, 1].max()))) + 2
    subdiv = cv2.Subdiv2D((x0, y0, x1 - x0, y1 - y0))
    index: dict[tuple[float, float], int] = {}
    for i, (x, y) in enumerate(pts):
        key = (float(x), float(y))
        if key not in index:
            index[key] = i
            subdiv.insert(key)
    tris = []
    for x_a, y_a, x_b, y_b, x_c, y_c in subdiv.getTriangleList():
        ids = [index.get((float(x), float(y))) for x, y in ((x_a, y_a), (x_b, y_b), (x_c, y_c))]
        # Triangles touching the subdivision's virtual outer vertices are not ours.
        if None not in ids:
            tris.append(ids)
    return np.asarray(tris, np.int64).reshape(-1, 3)


def orientation(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """The sign (+1, -1, or 0 if degenerate) of each triangle's signed area, (T,) int; +1 is clockwise on screen."""
    p = np.asarray(points, np.float64)[np.asarray(triangles, np.int64).reshape(-1, 3)]  # (T, 3, 2)
    u, v = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    return np.sign(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]).astype(np.int64)


def piecewise_affine_warp(image: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray,
                          size: int | tuple[int, int], triangles: np.ndarray,
                          interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, np.ndarray]:
    """Warp `image` so that each triangle of `src_pts` lands on the same triangle of `dst_pts`.

    image: (H, W) or (H, W, C) of any OpenCV dtype; src_pts, dst_pts: (P, 2) corresponding points; size: the
    output's int or (height, width); triangles: (T, 3) indices, e.g. ``triangulate(dst_pts, size)``.
    Returns ``(warped, coverage)``: the warped image (size of the output, dtype of the input) and a float32
    (H_out, W_out) mask that is 1 where a triangle covers the pixel and 0 elsewhere (there `warped` is 0).

    Each destination triangle is rasterised into its bounding box only (a triangle-id map), every covered pixel
    gets its source position from its triangle's affine map, and one ``cv2.remap`` samples the image.
    """
    src = np.asarray(src_pts, np.float64)
    dst = np.asarray(dst_pts, np.float64)
    tris = np.asarray(triangles, np.int64).reshape(-1, 3)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2:
        raise ValueError(f"src_pts {src.shape} and dst_pts {dst.shape} must both be (P, 2)")
    if tris.size and (tris.min() < 0 or tris.max() >= len(src)):
        raise ValueError(f"triangle indices out of range for {len(src)} points")
    h, w = _hw(size)

    # Affine maps from destination to source, one per triangle: [x_s, y_s] = [x_d, y_d, 1] @ A, A (T, 3, 2).
    d = np.concatenate([dst[tris], np.ones((len(tris), 3, 1))], 2)  # (T, 3, 3)
    det = np.linalg.det(d) if len(tris) else np.zeros(0)
    ok = np.abs(det) > 1e-6  # degenerate destination triangles cover no pixels
    tris, d = tris[ok], d[ok]
    affine = np.linalg.solve(d, src[tris])  # (T, 3, 2)

    # Triangle-id map: -1 where no triangle covers the pixel.
    ids = np.full((h, w), -1, np.int32)
    shift = 4  # sub-pixel precision of the rasteriser (1/16 px)
    lo = np.maximum(np.floor(dst[tris].min(1)).astype(np.int64) - 1, 0)  # (T, 2) bounding boxes
    hi = np.minimum(np.ceil(dst[tris].max(1)).astype(np.int64) + 2, [w, h])
    # Corners relative to their box, in fixed point.
    corners = np.round((dst[tris] - lo[:, None]) * (1 << shift)).astype(np.int32)  # (T, 3, 2)
    for t in np.flatnonzero((hi > lo).all(1)).tolist():  # skips triangles entirely off the output
        roi = ids[lo[t, 1]:hi[t, 1], lo[t, 0]:hi[t, 0]]  # a view: filling it fills `ids`
        cv2.fillConvexPoly(roi, corners[t], t, lineType=cv2.LINE_8, shift=shift)

    covered = ids >= 0
    ys, xs = np.nonzero(covered)
    a = affine[ids[ys, xs]]  # (K, 3, 2)
    map_x = np.full((h, w), -1.0, np.float32)
    map_y = np.full((h, w), -1.0, np.float32)
    map_x[ys, xs] = xs * a[:, 0, 0] + ys * a[:, 1, 0] + a[:, 2, 0]
    map_y[ys, xs] = xs * a[:, 0, 1] + ys * a[:, 1, 1] + a[:, 2, 1]
    # Covered pixels mapping just off the source replicate its edge rather than turn black.
    warped = cv2.remap(np.ascontiguousarray(image), map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)
    warped[~covered] = 0
    return warped, covered.astype(np.float32)
