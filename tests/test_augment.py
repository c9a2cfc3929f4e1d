"""Augmentations keep images and landmarks in step, are reproducible and device-agnostic."""

import numpy as np
import pytest
import torch

from faceswaplab.data.augment import (
    Augment,
    apply_flow,
    color_jitter,
    flip_landmarks,
    random_affine,
    random_flip,
    random_warp,
    sample_at,
    warp_points,
)
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.faces import template as T

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def coordinate_image(b: int, h: int, w: int) -> torch.Tensor:
    """(B, 2, H, W) whose pixels hold their own (x, y): after a warp, each pixel tells where it came from."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([xs, ys])[None].repeat(b, 1, 1, 1)


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


@pytest.fixture(scope="module")
def landmarks() -> torch.Tensor:
    """Landmarks of four varied synthetic renders at 64 px, (4, 68, 2)."""
    r = SyntheticFaces(seed=1, num_identities=2)
    return torch.from_numpy(np.stack([r.sample(i % 2, i, size=64).landmarks for i in range(4)]))


def test_random_warp_strength_zero_is_identity():
    x = torch.rand(3, 3, 32, 32, generator=_gen(0)) * 2 - 1
    y, flow = random_warp(x, strength=0.0, generator=_gen(1))
    assert torch.equal(y, x) and flow.shape == (3, 2, 32, 32) and flow.abs().max() == 0
    # The identity flow through grid_sample reproduces the image (pixel-centre convention is consistent).
    assert torch.allclose(apply_flow(x, flow), x, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_random_warp_flow_matches_warped_landmarks(landmarks, device):
    img = coordinate_image(4, 64, 64).to(device)
    warped, flow = random_warp(img, strength=0.03, generator=_gen(5))
    assert warped.device.type == device and flow.abs().max() > 1.0  # a real warp, several pixels
    lm = landmarks.to(device)
    moved = warp_points(lm, flow)
    inside = ((moved > 1) & (moved < 62)).all(-1)
    # The warped coordinate image, sampled where the landmarks moved to, gives back their original positions.
    back = sample_at(warped, moved[:, :, None, :])[..., 0].transpose(1, 2)
    err = (back - lm).norm(dim=-1)[inside]
    assert inside.float().mean() > 0.9 and err.max() < 0.05
    assert (moved - lm).norm(dim=-1).max() > 1.0


def test_random_warp_is_reproducible_and_smooth():
    x = torch.rand(2, 3, 64, 64, generator=_gen(0))
    a, fa = random_warp(x, 0.03, generator=_gen(7))
    b, fb = random_warp(x, 0.03, generator=_gen(7))
    c, fc = random_warp(x, 0.03, generator=_gen(8))
    assert torch.equal(a, b) and torch.equal(fa, fb) and not torch.equal(fa, fc)
    # Smooth: neighbouring pixels move almost together (a coarse lattice upsampled, not per-pixel noise).
    assert (fa[..., 1:] - fa[..., :-1]).abs().max() < 0.25 * fa.abs().max()


def test_flip_is_involution_and_relabels_sides(landmarks):
    img = coordinate_image(4, 64, 64)
    f_img, f_lm, flipped = random_flip(img, landmarks, p=1.0, generator=_gen(0))
    assert flipped.all()
    # The point now labelled "left eye outer corner" is the mirrored right eye outer corner.
    assert torch.allclose(f_lm[:, 36, 0], 63 - landmarks[:, 45, 0]) and torch.allclose(f_lm[:, 36, 1], landmarks[:, 45, 1])
    # Image and landmarks agree: the flipped image at the flipped landmarks holds the mirrored x coordinates.
    back = sample_at(f_img, f_lm[:, :, None, :])[..., 0].transpose(1, 2)
    inside = ((f_lm > 0) & (f_lm < 63)).all(-1)
    perm = torch.as_tensor(T.FLIP_PERMUTATION)
    assert torch.allclose(back[..., 0][inside], landmarks[:, perm, 0][inside], atol=1e-3)
    assert torch.allclose(flip_landmarks(f_lm, 64), landmarks, atol=1e-5)
    same, same_lm, none = random_flip(img, landmarks, p=0.0, generator=_gen(0))
    assert not none.any() and torch.equal(same, img) and torch.equal(same_lm, landmarks)
    # The canonical face is symmetric: flipping it gives the same landmarks.
    canon = torch.from_numpy(T.canonical_landmarks(64)).float()[None]
    assert torch.allclose(flip_landmarks(canon, 64), canon, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_affine_jitter_moves_image_and_landmarks_together(landmarks, device):
    img = coordinate_image(4, 64, 64).to(device)
    lm = landmarks.to(device)
    out, moved, m = random_affine(img, lm, rotate=15, scale=0.1, translate=0.05, generator=_gen(3))
    assert m.shape == (4, 2, 3) and not torch.allclose(moved, lm)
    back = sample_at(out, moved[:, :, None, :])[..., 0].transpose(1, 2)
    inside = ((moved > 1) & (moved < 62)).all(-1)
    assert torch.allclose(back[inside], lm[inside], atol=1e-3)


def test_color_jitter_range_and_identity():
    x = torch.rand(4, 3, 16, 16, generator=_gen(0)) * 2 - 1
    y = color_jitter(x, 0.3, 0.3, 0.3, generator=_gen(1))
    assert y.min() >= -1 and y.max() <= 1 and not torch.allclose(x, y)
    assert torch.allclose(color_jitter(x, 0, 0, 0, generator=_gen(1)), x, atol=1e-6)


def test_augment_with_cpu_generator_on_any_device(landmarks):
    aug = Augment(flip=0.5, rotate=10, scale=0.05, translate=0.03, brightness=0.2, contrast=0.2, saturation=0.2,
                  warp=0.02)
    x = torch.rand(4, 3, 64, 64, generator=_gen(0)) * 2 - 1
    a = aug(x, landmarks, _gen(11))
    b = aug(x, landmarks, _gen(11))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == x.shape and a[1].shape == landmarks.shape and a[0].abs().max() <= 1
    for device in DEVICES[1:]:
        c = aug(x.to(device), landmarks.to(device), _gen(11))
        assert torch.allclose(c[0].cpu(), a[0], atol=1e-4) and torch.allclose(c[1].cpu(), a[1], atol=1e-3)


def test_one_generator_per_sample_augments_each_as_alone(landmarks):
    """A batch with a generator per sample (how the data module augments a whole batch in one call) gives every
    sample exactly what a call on that sample alone with its generator gives."""
    aug = Augment(flip=0.5, rotate=10, scale=0.05, translate=0.03, brightness=0.2, contrast=0.2, saturation=0.2,
                  warp=0.02)
    x = torch.rand(4, 5, 64, 64, generator=_gen(0)) * 2 - 1  # RGB and two mask channels
    images, points, info = aug(x, landmarks, [_gen(s) for s in (3, 4, 5, 6)], return_info=True)
    for k, seed in enumerate((3, 4, 5, 6)):
        alone, alone_points, alone_info = aug(x[k:k + 1], landmarks[k:k + 1], _gen(seed), return_info=True)
        assert torch.equal(images[k], alone[0]) and torch.equal(points[k], alone_points[0])
        assert torch.equal(info["flipped"][k], alone_info["flipped"][0])
    assert not torch.equal(images[0], images[1])


def test_pose_follows_flip_and_rotation():
    """Roll after rotating a render by our affine matches the renderer's own roll convention."""
    r = SyntheticFaces(seed=0, num_identities=1)
    neutral = r.render(0, 64, pose=(0.0, 0.0, 0.0))
    rolled = r.render(0, 64, pose=(0.0, 0.0, 12.0))

    def eye_angle(lm):
        d = lm[:, T.EYE_RIGHT].mean(1) - lm[:, T.EYE_LEFT].mean(1)
        return torch.rad2deg(torch.atan2(d[:, 1], d[:, 0]))

    lm0 = torch.from_numpy(neutral.landmarks)[None]
    img = torch.zeros(1, 3, 64, 64)
    aug = Augment(flip=0.0, rotate=12.0)
    # Find a seed whose rotation is clearly positive, then compare the change of the eye-line angle.
    for seed in range(50):
        _, lm1, info = aug(img, lm0, _gen(seed), return_info=True)
        if info["angle"].item() > 6:
            break
    pose = Augment.adjust_pose(torch.tensor([[0.0, 0.0, 0.0]]), info)
    expected = eye_angle(torch.from_numpy(rolled.landmarks)[None]) - eye_angle(lm0)  # renderer: roll 12 deg
    measured = eye_angle(lm1) - eye_angle(lm0)
    assert torch.allclose(pose[0, 2], info["angle"][0]) and torch.allclose(measured, info["angle"], atol=0.5)
    assert torch.sign(expected) == torch.sign(measured)  # same direction of in-plane rotation
    flipped = Augment.adjust_pose(torch.tensor([[20.0, 5.0, 12.0]]), {"flipped": torch.tensor([True]),
                                                                       "angle": torch.zeros(1)})
    assert torch.allclose(flipped, torch.tensor([[-20.0, 5.0, -12.0]]))
