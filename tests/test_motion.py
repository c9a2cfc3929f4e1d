"""The keypoint-motion method's own maths (faceswaplab.methods.motion): region motions, warping, the best shot,
pasting, and the training pairs."""

import math

import numpy as np
import pytest
import torch

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.faces.masks import face_hull_mask
from faceswaplab.methods.motion import (
    NUM_MOTIONS, Motion, base_grid, best_shot, fit_affine, keypoints, region_maps, sparse_motions, to_grid_coords,
    warp)


def model(size: int = 32, **kw) -> Motion:
    torch.manual_seed(0)
    return Motion(image_size=size, **{**Motion.tiny, **kw}).eval()


def faces(identity: int, n: int, start: int = 0, size: int = 32):
    gen = SyntheticFaces(seed=0)
    fs = [gen.sample(identity, start + k, size=size) for k in range(n)]
    images = torch.stack([torch.from_numpy(f.image).permute(2, 0, 1).float() / 127.5 - 1 for f in fs])
    return images, torch.stack([torch.from_numpy(f.landmarks).float() for f in fs])


def affine(points: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return points @ m[:, :2].T + m[:, 2]


def test_region_motions_of_landmarks_moved_by_an_affine_map_reproduce_it():
    _, lm = faces(0, 2)
    drv = to_grid_coords(lm, 32)  # (2, 68, 2)
    m = torch.tensor([[1.1, 0.25, 0.05], [-0.1, 0.9, -0.08]])  # shear and stretch: no similarity
    src = affine(drv, m)
    # Exact least squares (no ridge): every region's map is the affine map itself.
    maps = region_maps(drv, src, ridge=0.0)  # (2, M, 2, 3)
    assert maps.shape == (2, NUM_MOTIONS, 2, 3)
    assert torch.allclose(maps[:, 2:], m.expand(2, NUM_MOTIONS - 2, 2, 3), atol=1e-4)
    # With the ridge the Jacobians lean toward the global similarity, but each region's centre still lands on the
    # map's image of it.
    maps = region_maps(drv, src, ridge=0.05)
    kp_d, kp_s = keypoints(drv), keypoints(src)  # (2, M - 1, 2)
    moved = (maps[:, 1:, :, :2] @ kp_d[..., None])[..., 0] + maps[:, 1:, :, 2]
    assert torch.allclose(moved[:, 1:], kp_s[:, 1:], atol=1e-5)
    assert torch.allclose(kp_s, affine(kp_d, m), atol=1e-5)
    assert not torch.allclose(maps[:, 2:], m.expand(2, NUM_MOTIONS - 2, 2, 3), atol=1e-3)  # the ridge does act


def test_a_similarity_gives_every_motion_but_the_background_as_that_similarity_over_the_whole_grid():
    _, lm = faces(1, 1)
    drv = to_grid_coords(lm, 32)
    a, t = 0.8 * math.cos(0.3), 0.8 * math.sin(0.3)
    m = torch.tensor([[a, -t, 0.1], [t, a, -0.05]])
    grids = sparse_motions(drv, affine(drv, m), 6, 5, ridge=0.05)  # (1, M, 6, 5, 2)
    grid = base_grid(6, 5, drv)
    assert torch.allclose(grids[0, 0], grid)  # the background stays put
    assert torch.allclose(grids[0, 1:], affine(grid, m).expand(NUM_MOTIONS - 1, 6, 5, 2), atol=1e-5)


def test_fit_affine_without_ridge_is_the_least_squares_solution():
    g = torch.Generator().manual_seed(0)
    src, dst = torch.randn(3, 9, 2, generator=g), torch.randn(3, 9, 2, generator=g)
    got = fit_affine(src, dst, torch.eye(2).expand(3, 2, 2), ridge=0.0)
    for b in range(3):
        X = torch.cat([src[b], torch.ones(9, 1)], 1).double()
        ref = torch.linalg.lstsq(X, dst[b].double()).solution.T.float()  # (2, 3)
        assert torch.allclose(got[b], ref, atol=1e-4)


def test_with_the_driver_equal_to_the_source_the_flow_is_the_identity_and_the_warp_returns_the_source():
    m = model()
    x, lm = faces(2, 3)
    with torch.no_grad():
        _, motion = m.animate(x, lm, lm)
    h = m.motion_size
    assert motion["flow"].shape == (3, h, h, 2)
    assert torch.allclose(motion["flow"], base_grid(h, h, x).expand(3, h, h, 2), atol=1e-5)
    assert torch.allclose(motion["masks"].sum(1), torch.ones(3, h, h), atol=1e-5)
    assert torch.allclose(warp(x, base_grid(32, 32, x).expand(3, 32, 32, 2)), x, atol=1e-5)
    # a flow resized to the image's size is the identity too
    assert torch.allclose(warp(x, motion["flow"]), x, atol=1e-5)


def test_the_best_shot_ignores_where_the_face_sits_and_its_size():
    _, lm = faces(3, 4, start=10)
    shots = torch.stack([lm[1] * 1.3 + 5.0, lm[0], lm[3] * 0.7 - 2.0, lm[2]])[None]  # (1, 4, 68, 2)
    for k, want in [(0, 1), (1, 0), (2, 3), (3, 2)]:
        assert int(best_shot(lm[k:k + 1], shots)) == want


def test_swap_with_k_shots_animates_the_nearest_shot_only():
    m = model()
    target, t_lm = faces(4, 2)
    src, s_lm = faces(5, 1, start=3)
    c = s_lm[0].mean(0)

    def turn(p, a):
        return (p - c) @ torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]).T + c

    # shots 0 and 2 tilted far away, shot 1 as is: the nearest to any near-upright driving frame
    lms = torch.stack([turn(s_lm[0], 0.6), s_lm[0], turn(s_lm[0], -0.6)])
    g = torch.Generator().manual_seed(0)
    shots = src.expand(3, -1, -1, -1).clone()
    noise = lambda: torch.rand(3, 32, 32, generator=g) * 2 - 1  # noqa: E731
    with torch.no_grad():
        out = m.swap(target, shots, target_landmarks=t_lm, source_landmarks=lms, shots=3)
        others = shots.clone()
        others[0], others[2] = noise(), noise()
        assert torch.allclose(m.swap(target, others, target_landmarks=t_lm, source_landmarks=lms, shots=3), out,
                              atol=1e-6)
        chosen = shots.clone()
        chosen[1] = noise()
        changed = m.swap(target, chosen, target_landmarks=t_lm, source_landmarks=lms, shots=3)
        assert (changed - out).abs().max() > 1e-3
        # the same K shots given once per target (B * K crops) swap alike
        each = m.swap(target, shots.repeat(2, 1, 1, 1), target_landmarks=t_lm, source_landmarks=lms.repeat(2, 1, 1),
                      shots=3)
        assert torch.allclose(each, out, atol=1e-5)
    with pytest.raises(ValueError, match="shots=2"):
        m.swap(target, shots, target_landmarks=t_lm, source_landmarks=lms, shots=2)


def test_the_output_is_the_target_outside_the_face_and_changed_inside():
    m = model(64)
    target, t_lm = faces(6, 2, size=64)
    source, _ = faces(7, 2, start=5, size=64)
    for i in range(2):  # one at a time, the source's landmarks the target's: the pasted face is the target's hull
        with torch.no_grad():
            out = m.swap(target[i:i + 1], source[i:i + 1], target_landmarks=t_lm[i:i + 1],
                         source_landmarks=t_lm[i:i + 1])
        far = face_hull_mask(t_lm[i:i + 1], 64, dilate=3 * m.hparams.paste_blur + 1)[0, 0] == 0  # past the feather
        assert far.float().mean() > 0.1
        assert torch.allclose(out[0][:, far], target[i][:, far], atol=1e-4)
        inside = face_hull_mask(t_lm[i:i + 1], 64, dilate=-3.0)[0, 0] > 0.99
        assert (out[0] - target[i]).abs().mean(0)[inside].mean() > 0.05


def test_training_pairs_frames_of_one_identity_and_refuses_batches_without_any():
    assert Motion.partners(torch.tensor([3, 3, 5, 5, 7, 5])).tolist() == [1, 0, 3, 5, -1, 2]
    m = model()
    x, lm = faces(0, 2)
    batch = {"image": x, "landmarks": lm, "identity": torch.tensor([0, 1])}
    with pytest.raises(ValueError, match="group_size=2"):
        m.training_step(batch, 0)


def test_image_size_must_allow_the_halvings():
    with pytest.raises(ValueError, match="motion_scale"):
        Motion(image_size=32, motion_scale=0.25, motion_depth=4)  # 8 px cannot be halved 4 times
    with pytest.raises(ValueError, match="image_size = 48"):
        Motion(image_size=48, n_down=5)
    Motion(image_size=48, n_down=4, motion_scale=1 / 3, motion_depth=4)  # 48 = 3 * 16; 16 = 16
    assert np.isclose(Motion(image_size=64).motion_size, 16)


def test_the_loss_pyramid_has_num_scales_levels_down_from_full_size():
    m = model(num_scales=3)
    sizes = []
    fake, real = torch.zeros(2, 3, 64, 64), torch.ones(2, 3, 64, 64)
    total = m.pyramid_loss(fake, real, lambda a, b: sizes.append(a.shape[-1]) or (a - b).abs().mean())
    assert sizes == [64, 32, 16]
    assert torch.isclose(total, torch.tensor(3.0))
