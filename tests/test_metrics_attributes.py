"""Attribute-preservation metrics: landmark NME, head pose (against the renderer's known poses), expression."""

import math

import numpy as np
import pytest
import torch

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.metrics import (
    ExpressionError, HeadPoseError, LandmarkNME, detect_landmarks, expression_error, head_pose, landmark_nme,
)

SIZE = 128


@pytest.fixture(scope="module")
def faces():
    return SyntheticFaces(0, 8)


def _lm(faces, i, pose=(0, 0, 0), expression=(0, 0, 0, 0)):
    return faces.render(i, SIZE, pose=pose, expression=expression).landmarks[None].astype(np.float64)


def test_nme_zero_for_identical_and_scales_with_offset(faces):
    t = torch.as_tensor(np.concatenate([_lm(faces, 0), _lm(faces, 1, (20, 5, 0))]))
    assert torch.allclose(landmark_nme(t, t), torch.zeros(2, dtype=torch.float64))
    iod = (t[:, 36] - t[:, 45]).norm(dim=-1)
    shifted = t + torch.tensor([3.0, 4.0], dtype=torch.float64)  # every point 5 px away
    assert torch.allclose(landmark_nme(shifted, t), 5.0 / iod)
    # NME is scale-free: the same configuration at twice the size gives the same error
    assert torch.allclose(landmark_nme(2 * shifted, 2 * t), landmark_nme(shifted, t))
    assert torch.isnan(landmark_nme(torch.full_like(t, math.nan), t)).all()


def test_landmark_nme_metric_keeps_per_sample_values_and_counts_failures(faces):
    t = torch.as_tensor(np.concatenate([_lm(faces, 0), _lm(faces, 1), _lm(faces, 2)]))
    pred = t + torch.tensor([2.0, 0.0], dtype=torch.float64)
    pred[1] = math.nan  # face not found in the second output
    m = LandmarkNME()
    m.update(t, output_landmarks=pred)
    per = m.per_sample()
    assert per.shape == (3,) and torch.isnan(per[1]) and m.num_failed() == 1
    expected = landmark_nme(pred, t)[[0, 2]].mean()
    assert torch.isclose(m.compute(), expected)


def test_head_pose_recovers_renderer_poses(faces):
    lms, poses = [], []
    for i in range(8):
        for k in range(4):
            r = faces.sample(i, k, SIZE)
            lms.append(r.landmarks)
            poses.append(r.pose)
    est = head_pose(np.stack(lms), SIZE)
    err = (est - torch.as_tensor(np.stack(poses), dtype=torch.float64)).abs()
    assert err.mean(0).max() < 2.5, err.mean(0)  # yaw, pitch, roll: about 1 degree on average
    assert err.max() < 8.0, err.max(0)


def test_head_pose_sign_convention(faces):
    est = head_pose(np.concatenate([_lm(faces, 3, (25, 0, 0)), _lm(faces, 3, (0, 15, 0)), _lm(faces, 3, (0, 0, 12))]),
                    SIZE)
    yaw, pitch, roll = est[0, 0], est[1, 1], est[2, 2]
    assert 20 < yaw < 30 and 10 < pitch < 20 and 10 < roll < 14, est


def test_head_pose_error_metric_against_known_pose_and_landmarks(faces):
    rs = [faces.sample(i, 7, SIZE) for i in range(4)]
    lm = torch.as_tensor(np.stack([r.landmarks for r in rs]))
    gt = torch.as_tensor(np.stack([r.pose for r in rs]))
    m = HeadPoseError(SIZE)
    m.update(gt, output_landmarks=lm)
    assert m.per_angle().shape == (4, 3) and float(m.compute()) < 3.0
    # landmarks of a turned head against the frontal target: about the turn
    m2 = HeadPoseError(SIZE)
    m2.update(torch.as_tensor(_lm(faces, 0)), output_landmarks=torch.as_tensor(_lm(faces, 0, (30, 0, 0))))
    assert 25 < float(m2.per_angle()[0, 0]) < 35


def test_expression_error_ignores_pose_and_identity_but_sees_expression(faces):
    smile, mouth_open = (0, 1, 0, 0), (1, 0, 0, 0)
    same_expr_other_pose = expression_error(_lm(faces, 0, (20, 10, 5), smile), _lm(faces, 0, (0, 0, 0), smile), SIZE)
    other_expr = expression_error(_lm(faces, 0, (0, 0, 0), mouth_open), _lm(faces, 0), SIZE)
    assert float(same_expr_other_pose) < 0.012 and float(other_expr) > 0.03
    # Between identities the neutral shapes must be removed for the error to measure expression only.
    n1, n2 = _lm(faces, 1), _lm(faces, 2)
    raw = expression_error(_lm(faces, 1, (25, 10, 0), smile), _lm(faces, 2, (25, 10, 0), smile), SIZE)
    same = expression_error(_lm(faces, 1, (25, 10, 0), smile), _lm(faces, 2, (25, 10, 0), smile), SIZE, n1, n2)
    other = expression_error(_lm(faces, 1, (25, 10, 0), smile), _lm(faces, 2, (25, 10, 0), mouth_open), SIZE, n1, n2)
    assert float(same) < 0.5 * float(raw) and float(other) > 4 * float(same)
    m = ExpressionError(SIZE)
    m.update(torch.as_tensor(_lm(faces, 2, (25, 10, 0), smile)), output_landmarks=_lm(faces, 1, (25, 10, 0), smile),
             output_neutral=n1, target_neutral=n2)
    assert torch.isclose(m.compute(), same.double()[0])


def test_detector_path_finds_real_face_and_reports_misses(astronaut):
    """Landmarks detected in an aligned real crop; a blank output is a NaN failure, not a crash."""
    from faceswaplab.faces.alignment import align_face
    from faceswaplab.faces.backends import DlibBackend

    face = DlibBackend("hog", 1).faces(astronaut)[0]
    crop, _, crop_lm = align_face(astronaut, face.landmarks, SIZE)
    x = torch.as_tensor(crop).permute(2, 0, 1)[None].float() / 127.5 - 1
    blank = torch.zeros_like(x)
    det = detect_landmarks(torch.cat([x, blank]))
    assert torch.isfinite(det[0]).all() and torch.isnan(det[1]).all()
    assert float(landmark_nme(det[:1], crop_lm[None])) < 0.05
    m = LandmarkNME()
    m.update(torch.as_tensor(np.stack([crop_lm, crop_lm])), output_images=torch.cat([x, blank]))
    assert m.num_failed() == 1 and float(m.compute()) < 0.05
