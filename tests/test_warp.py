import cv2
import numpy as np
import pytest

from faceswaplab.faces import masks, template
from faceswaplab.faces import warp as W


def _similarity(scale: float, angle_deg: float, shift: tuple[float, float], center: float) -> np.ndarray:
    m = cv2.getRotationMatrix2D((center, center), angle_deg, scale)
    m[:, 2] += shift
    return m


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


def test_triangulation_is_a_full_delaunay_mesh_of_the_hull():
    size = 128
    pts = W.mesh_points(template.canonical_landmarks(size), size, border=False)
    tris = W.triangulate(pts, size)
    # Euler: a triangulation of n points (h on the hull) has 2n - 2 - h triangles.
    hull = cv2.convexHull(pts.astype(np.float32), returnPoints=False).ravel()
    assert len(tris) == 2 * len(pts) - 2 - len(hull)
    assert tris.dtype == np.int64 and tris.min() >= 0 and tris.max() < len(pts)
    assert (W.orientation(pts, tris) != 0).all()
    # The triangles tile the convex hull: their union is the hull's area, with no overlaps.
    u, v = pts[tris[:, 1]] - pts[tris[:, 0]], pts[tris[:, 2]] - pts[tris[:, 0]]
    areas = np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]) / 2
    assert areas.sum() == pytest.approx(cv2.contourArea(pts[hull]), rel=1e-4)


def test_mesh_with_border_and_forehead_covers_the_face_mask_and_frame():
    size = 96
    lm = template.canonical_landmarks(size)
    pts = W.mesh_points(lm, size)
    # The raised brows are the face mask's forehead vertices.
    np.testing.assert_allclose(pts[68:78], masks.face_hull_points(lm, masks.DEFAULT_FOREHEAD)[-10:], atol=1e-4)
    tris = W.triangulate(pts, size)
    _, coverage = W.piecewise_affine_warp(np.zeros((size, size), np.uint8), pts, pts, size, tris)
    assert coverage.min() == 1.0  # border points: every pixel of the frame is inside a triangle
    face = W.mesh_points(lm, size, border=False)
    _, face_cov = W.piecewise_affine_warp(np.zeros((size, size), np.uint8), face, face, size,
                                          W.triangulate(face, size))
    hull_mask = masks.face_hull_mask_np(lm, size)
    assert (face_cov[hull_mask > 0.5] == 1).all()


def test_repeated_points_take_part_in_no_triangle():
    pts = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5], [5, 5]], np.float32)
    tris = W.triangulate(pts, 16)
    assert 5 not in tris and len(tris) == 4


def test_identity_warp_is_exact():
    rng = np.random.default_rng(0)
    size = 80
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    pts = W.mesh_points(template.canonical_landmarks(size), size)
    warped, coverage = W.piecewise_affine_warp(image, pts, pts, size, W.triangulate(pts, size))
    assert warped.dtype == np.uint8 and coverage.dtype == np.float32
    np.testing.assert_array_equal(warped, image)


def test_global_similarity_matches_warp_affine():
    rng = np.random.default_rng(1)
    size = 96
    image = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (5, 5), 1.5)
    src = W.mesh_points(template.canonical_landmarks(size), size, border=False)
    m = _similarity(0.9, 12.0, (3.0, -2.0), (size - 1) / 2)
    dst = _apply(m, src)
    warped, coverage = W.piecewise_affine_warp(image, src, dst, size, W.triangulate(dst, size))
    expected = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.erode(coverage, np.ones((3, 3), np.uint8)) > 0
    assert inside.sum() > 0.3 * size * size
    diff = np.abs(warped.astype(int) - expected.astype(int))[inside]
    assert diff.max() <= 1


def test_landmark_features_land_on_the_target_landmarks():
    """A dot drawn at each source landmark is found at the matching target landmark after the warp."""
    size = 128
    src_lm = template.canonical_landmarks(size).astype(np.float32)
    # A different face: another scale, rotation and position, and a smooth non-rigid change of shape.
    m = _similarity(0.85, -10.0, (4.0, 6.0), (size - 1) / 2)
    dst_lm = _apply(m, src_lm)
    x, y = dst_lm[:, 0].copy(), dst_lm[:, 1].copy()
    dst_lm += np.stack([3.0 * np.sin(2 * np.pi * y / size), 2.0 * np.cos(2 * np.pi * x / size)], 1)
    src, dst = W.mesh_points(src_lm, size, border=False), W.mesh_points(dst_lm, size, border=False)
    tris = W.triangulate(dst, size)
    assert (W.orientation(src, tris) == W.orientation(dst, tris)).all()  # no folds: every dot maps once

    # One channel per landmark: a small Gaussian dot centred on it (sub-pixel).
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    dots = np.exp(-((xs[..., None] - src_lm[:, 0]) ** 2 + (ys[..., None] - src_lm[:, 1]) ** 2) / (2 * 1.2**2))
    warped, _ = W.piecewise_affine_warp(dots.astype(np.float32), src, dst, size, tris)
    weight = warped.sum((0, 1))
    found = np.stack([(warped * xs[..., None]).sum((0, 1)), (warped * ys[..., None]).sum((0, 1))], 1) / weight[:, None]
    err = np.linalg.norm(found - dst_lm, axis=1)
    assert err.max() < 1.0, f"worst landmark {err.argmax()} off by {err.max():.2f} px"
    assert err.mean() < 0.4


def test_points_outside_the_image_and_rectangular_sizes():
    h, w = 60, 90
    lm = template.canonical_landmarks(100).astype(np.float32) - [5, 30]  # brows and forehead above the top edge
    pts = W.mesh_points(lm, (h, w))
    assert (pts[:, 1] < 0).any()
    tris = W.triangulate(pts, (h, w))
    image = np.full((h, w, 3), 7, np.uint8)
    warped, coverage = W.piecewise_affine_warp(image, pts, pts, (h, w), tris)
    assert warped.shape == (h, w, 3) and coverage.shape == (h, w)
    assert coverage.min() == 1.0 and (warped == 7).all()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="68"):
        W.mesh_points(np.zeros((5, 2)), 64)
    with pytest.raises(ValueError, match="NaN"):
        W.triangulate(np.array([[0, 0], [1, 0], [np.nan, 1]]), 8)
    pts = np.array([[0, 0], [9, 0], [0, 9]], np.float32)
    with pytest.raises(ValueError, match="out of range"):
        W.piecewise_affine_warp(np.zeros((10, 10), np.uint8), pts, pts, 10, np.array([[0, 1, 3]]))
    with pytest.raises(ValueError, match=r"\(P, 2\)"):
        W.piecewise_affine_warp(np.zeros((10, 10), np.uint8), pts, pts[:2], 10, np.array([[0, 1, 2]]))
