import cv2
import numpy as np
import pytest
import torch

from faceswaplab.faces import template
from faceswaplab.faces.alignment import (
    align_face,
    alignment_transform,
    alignment_transform_batch,
    invert_transform,
    invert_transform_batch,
    paste_back,
    similarity_transform,
    similarity_transform_batch,
    transform_points,
    warp,
)
from faceswaplab.faces.backends import DlibBackend


def _similarity(angle_deg, scale, tx, ty):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_similarity_transform_recovers_known_map():
    src = np.random.rand(30, 2) * 200
    m = _similarity(33.0, 1.7, -12.0, 40.0)
    est = similarity_transform(src, transform_points(src, m))
    np.testing.assert_allclose(est, m, atol=1e-9)


def test_similarity_transform_is_least_squares_and_never_reflects():
    src = np.random.rand(40, 2) * 100
    m = _similarity(-10.0, 0.8, 5.0, 7.0)
    noisy = transform_points(src, m) + np.random.randn(40, 2) * 0.5
    est = similarity_transform(src, noisy)
    assert np.abs(est - m).max() < 0.5
    # The residual of the estimate is no larger than that of the true map.
    res = lambda t: ((transform_points(src, t) - noisy) ** 2).sum()  # noqa: E731
    assert res(est) <= res(m) + 1e-9
    mirrored = src * [-1, 1]
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :2]) > 0


def test_similarity_transform_rejects_degenerate_points():
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), np.random.rand(5, 2))
    with pytest.raises(ValueError):
        similarity_transform(np.random.rand(5, 2), np.random.rand(4, 2))


def test_batched_similarity_matches_numpy_and_inverts():
    rng = np.random.default_rng(0)
    src = rng.random((5, 40, 2)) * 100
    truth = [_similarity(a, s, 3.0, -4.0) for a, s in zip((-30, -5, 0, 12, 80), (0.5, 0.9, 1.0, 1.3, 2.0))]
    dst = np.stack([transform_points(p, m) for p, m in zip(src, truth)]) + rng.normal(0, 0.5, (5, 40, 2))
    est = similarity_transform_batch(torch.tensor(src), torch.tensor(dst))
    for b in range(5):
        np.testing.assert_allclose(est[b].numpy(), similarity_transform(src[b], dst[b]), atol=1e-9)
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=torch.float64)
    inv = invert_transform_batch(est)
    # est o inv = identity: [A | t] applied after [A^-1 | -A^-1 t].
    composed = torch.cat([est[:, :, :2] @ inv[:, :, :2], est[:, :, :2] @ inv[:, :, 2:] + est[:, :, 2:]], 2)
    torch.testing.assert_close(composed, eye.expand(5, 2, 3))


def test_batched_alignment_transform_matches_alignment_transform():
    canon = template.canonical_landmarks(64)
    lms = np.stack([transform_points(canon, _similarity(a, 0.8, 10.0, -5.0)) for a in (-15, 0, 20)])
    est = alignment_transform_batch(torch.tensor(lms, dtype=torch.float32), 64)
    for b in range(3):
        np.testing.assert_allclose(est[b].numpy(), alignment_transform(lms[b], 64), atol=1e-4)


def test_invert_transform_round_trip():
    m = _similarity(71.0, 2.5, 3.0, -9.0)
    pts = np.random.rand(10, 2) * 50
    np.testing.assert_allclose(transform_points(transform_points(pts, m), invert_transform(m)), pts, atol=1e-9)


def test_align_face_maps_template_face_onto_canonical_landmarks():
    size = 128
    canon = template.canonical_landmarks(size)
    m = _similarity(-20.0, 1.9, 100.0, 60.0)  # crop pixels -> some face pose in a 400 px image
    landmarks = transform_points(canon, m)
    image = np.random.randint(0, 255, (400, 400, 3), np.uint8)
    crop, t, lm_crop = align_face(image, landmarks, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(lm_crop, canon, atol=1e-6)
    np.testing.assert_allclose(t, invert_transform(m), atol=1e-9)


def test_warp_pixel_centres_with_antialiased_downscale():
    # A linear ramp is reproduced exactly by area averaging and bilinear sampling, so any half-pixel slip in the
    # downscale path shows up as an error of several grey levels.
    h, w = 1200, 1600
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.stack([xx * 0.1, yy * 0.1, (xx + yy) * 0.05], -1).astype(np.float32)
    m = _similarity(15.0, 0.12, 10.0, -20.0)  # a strong downscale: takes the area-resize path
    out = warp(ramp, m, 64)
    oy, ox = np.mgrid[0:64, 0:64].astype(np.float64)
    src = transform_points(np.stack([ox, oy], -1), invert_transform(m))
    inside = (src[..., 0] > 20) & (src[..., 0] < w - 20) & (src[..., 1] > 20) & (src[..., 1] < h - 20)
    expect = np.stack([src[..., 0] * 0.1, src[..., 1] * 0.1, (src[..., 0] + src[..., 1]) * 0.05], -1)
    assert inside.sum() > 500
    assert np.abs(out[inside] - expect[inside]).max() < 0.2


def test_paste_back_restores_frame_and_edits_only_the_face(astronaut):
    frame = astronaut
    lm = DlibBackend().faces(frame)[0].landmarks
    crop, t, _ = align_face(frame, lm, 256)
    same = paste_back(frame, crop, t)
    box = lm.min(0).astype(int), lm.max(0).astype(int)
    region = (slice(box[0][1], box[1][1]), slice(box[0][0], box[1][0]))
    assert np.abs(same[region].astype(int) - frame[region]).mean() < 4
    black = paste_back(frame, np.zeros_like(crop), t)
    assert black[region].mean() < 0.2 * frame[region].mean()
    np.testing.assert_array_equal(black[450:], frame[450:])  # far from the face nothing changes


def test_rotated_scaled_copy_aligns_to_the_same_crop(astronaut):
    """Real dlib detection + landmarks on the photo and on a rotated (25 deg), scaled (0.7), padded copy."""
    backend = DlibBackend(upsample=1)
    size = 128
    face = max(backend.faces(astronaut), key=lambda f: f.area)
    crop_a, _, lm_a = align_face(astronaut, face.landmarks, size)

    padded = cv2.copyMakeBorder(astronaut, 150, 150, 150, 150, cv2.BORDER_CONSTANT, value=(40, 40, 40))
    centre = ((padded.shape[1] - 1) / 2, (padded.shape[0] - 1) / 2)
    rot = cv2.getRotationMatrix2D(centre, 25.0, 0.7)
    moved = cv2.warpAffine(padded, rot, (padded.shape[1], padded.shape[0]), flags=cv2.INTER_LINEAR)
    faces_b = backend.faces(moved)
    assert faces_b, "dlib found no face in the rotated copy"
    face_b = max(faces_b, key=lambda f: f.area)
    crop_b, t_b, lm_b = align_face(moved, face_b.landmarks, size)

    # The same face lands on the same crop landmarks, and the crops look alike.
    assert np.abs(lm_a - lm_b)[template.INNER].mean() < 2.0
    inner = (slice(size // 4, 3 * size // 4),) * 2
    assert np.abs(crop_a[inner].astype(int) - crop_b[inner]).mean() < 12
    # The recovered transform undoes the rotation: its angle is -25 deg relative to the original's.
    t_a = alignment_transform(face.landmarks, size)
    angle = lambda t: np.degrees(np.arctan2(t[1, 0], t[0, 0]))  # noqa: E731
    assert abs((angle(t_b) - angle(t_a)) - 25.0) < 3.0
