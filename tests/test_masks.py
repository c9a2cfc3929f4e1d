"""Face masks and landmark sketches: torch (batched) and numpy twins agree, and cover the right pixels."""

import numpy as np
import pytest
import torch

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.faces import template as T
from faceswaplab.faces.masks import face_hull_mask, face_hull_mask_np, region_masks, region_masks_np
from faceswaplab.faces.sketch import SEGMENTS, draw_landmark_sketch, draw_landmark_sketch_np

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def faces():
    """Landmarks of varied synthetic renders at 64 and 128 px: {size: (B, 68, 2) float32}."""
    r = SyntheticFaces(seed=3, num_identities=4)
    return {s: torch.from_numpy(np.stack([r.sample(i % 4, i, size=s).landmarks for i in range(6)])) for s in (64, 128)}


def _at(mask: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """mask (B, 1, H, W) values at the nearest pixels of points (B, K, 2) -> (B, K)."""
    H, W = mask.shape[-2:]
    x = points[..., 0].round().long().clamp(0, W - 1)
    y = points[..., 1].round().long().clamp(0, H - 1)
    b = torch.arange(points.shape[0])[:, None]
    return mask[:, 0][b, y, x]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return (a & b).sum() / max(1, (a | b).sum())


@pytest.mark.parametrize("device", DEVICES)
def test_hull_covers_inner_face_and_excludes_corners(faces, device):
    lm = faces[64].to(device)
    m = face_hull_mask(lm, 64)
    assert m.shape == (6, 1, 64, 64) and m.dtype == torch.float32 and m.device.type == device
    assert 0.0 <= m.min() and m.max() <= 1.0
    assert (_at(m.cpu(), faces[64][:, T.NOSE + T.EYES + T.MOUTH_INNER]) > 0.99).all()
    # Every landmark is inside or on the hull (within the 0.71 px from a point to its nearest pixel centre).
    assert (_at(face_hull_mask(lm, 64, dilate=1.0).cpu(), faces[64]) > 0.75).all()
    for y, x in [(0, 0), (0, 63), (63, 0), (63, 63)]:
        assert (m[:, 0, y, x] == 0).all()
    # The forehead reaches above the brows: the pixel a fifth of the brow-to-chin distance above the brow centre.
    brow = faces[64][:, T.BROWS].mean(1)
    above = brow + 0.2 * (brow - faces[64][:, 8])
    assert (_at(m.cpu(), above[:, None]) > 0.99).all()
    # ...but not to the top of the crop with a small forehead.
    assert face_hull_mask(lm, 64, forehead=0.0)[:, 0, :3].max() == 0


def test_hull_grow_shrink_and_blur(faces):
    lm = faces[64]
    base = face_hull_mask(lm, 64).sum()
    assert face_hull_mask(lm, 64, dilate=3.0).sum() > base > face_hull_mask(lm, 64, dilate=-3.0).sum()
    soft = face_hull_mask(lm, 64, blur=2.0)
    assert ((soft > 0.05) & (soft < 0.95)).sum() > ((face_hull_mask(lm, 64) > 0.05) & (face_hull_mask(lm, 64) < 0.95)).sum()
    assert torch.allclose(soft.sum(), face_hull_mask(lm, 64).sum(), rtol=0.03)


def test_regions_cover_their_landmarks_only(faces):
    lm = faces[128]
    eyes, mouth = region_masks(lm, 128)
    assert eyes.shape == mouth.shape == (6, 1, 128, 128)
    assert (_at(eyes, lm[:, T.EYES]) >= 0.5).all()
    assert (_at(mouth, lm[:, T.MOUTH]) >= 0.5).all()
    assert (_at(eyes, lm[:, T.MOUTH + T.NOSE_BOTTOM + [8]]) == 0).all()
    assert (_at(mouth, lm[:, T.EYES + T.BROWS]) == 0).all()


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("dilate", [0.0, 3.0, -2.0])
def test_torch_and_numpy_twins_agree(faces, size, dilate):
    lm = faces[size]
    m = face_hull_mask(lm, size, dilate=dilate)[:, 0].numpy()
    eyes, mouth = region_masks(lm, size)
    for b in range(lm.shape[0]):
        assert _iou(m[b], face_hull_mask_np(lm[b].numpy(), size, dilate=dilate)) > 0.97
        e_np, m_np = region_masks_np(lm[b].numpy(), size)
        assert _iou(eyes[b, 0].numpy(), e_np) > 0.9  # small regions: a pixel of boundary is a few percent
        assert _iou(mouth[b, 0].numpy(), m_np) > 0.95


def test_non_square_size_and_empty_hull():
    lm = torch.from_numpy(T.canonical_landmarks(64)).float()[None] + torch.tensor([30.0, 0.0])  # face right of centre
    m = face_hull_mask(lm, (64, 128))
    assert m.shape == (1, 1, 64, 128)
    assert m[0, 0, 32, 62] == 1 and m[0, 0, 32, 5] == 0
    np_m = face_hull_mask_np(lm[0].numpy(), (64, 128))
    assert np_m.shape == (64, 128) and _iou(m[0, 0].numpy(), np_m) > 0.97
    assert face_hull_mask(torch.zeros(1, 68, 2), 32).max() == 0  # degenerate landmarks: empty, not NaN


@pytest.mark.parametrize("device", DEVICES)
def test_sketch_lines_bright_background_dark(faces, device):
    lm = faces[64].to(device)
    s = draw_landmark_sketch(lm, 64)
    assert s.shape == (6, 1, 64, 64) and s.device.type == device
    assert s.min() == -1.0 and s.max() <= 1.0
    s = s.cpu()
    ia, ib = zip(*[(a, b) for sa, sb in SEGMENTS for a, b in zip(sa, sb)])
    mid = (faces[64][:, list(ia)] + faces[64][:, list(ib)]) / 2  # segment midpoints, sub-pixel
    # Midpoints lie on the line: the nearest pixel centre is at most 0.71 px away, covered at >= 0.29.
    assert (_at(s, mid) > -0.45).all()
    # Pixels farther than 2 px from every landmark polyline are background.
    grid = torch.stack(torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="xy"), -1).view(-1, 2)
    a, b = faces[64][:, list(ia)], faces[64][:, list(ib)]
    e = b - a
    t = (((grid[None, :, None] - a[:, None]) * e[:, None]).sum(-1) / (e**2).sum(-1)[:, None].clamp_min(1e-9)).clamp(0, 1)
    d = (grid[None, :, None] - a[:, None] - t[..., None] * e[:, None]).norm(dim=-1).amin(-1).view(6, 64, 64)
    assert (s[:, 0][d > 2.0] == -1).all()
    assert (s[:, 0][d < 0.25] > 0.4).all()


def test_sketch_parts_thickness_and_gradient(faces):
    lm = faces[64].clone().requires_grad_(True)
    parts = draw_landmark_sketch(lm, 64, channels="parts")
    assert parts.shape == (6, 9, 64, 64)
    single = draw_landmark_sketch(lm, 64)
    assert torch.equal(parts.amax(1, keepdim=True), single)
    # The jaw channel lights up at jaw landmarks and not at the eye centres or the nose tip; the mouth's channel
    # not at the brows.
    assert (_at(parts[:, :1].detach(), faces[64][:, T.JAW]) > -0.45).all()
    eye_centres = torch.stack([faces[64][:, T.EYE_LEFT].mean(1), faces[64][:, T.EYE_RIGHT].mean(1)], 1)
    assert (_at(parts[:, :1].detach(), torch.cat([faces[64][:, [30]], eye_centres], 1)) == -1).all()
    assert (_at(parts[:, 7:8].detach(), faces[64][:, T.BROWS]) == -1).all()
    thick = draw_landmark_sketch(faces[64], 64, thickness=3.0)
    assert (thick > 0).sum() > 1.8 * (single > 0).sum()
    single.sum().backward()
    assert torch.isfinite(lm.grad).all() and lm.grad.abs().sum() > 0


def test_numpy_sketch_twin(faces):
    lm = faces[128][0]
    img = draw_landmark_sketch_np(lm.numpy(), 128)
    assert img.shape == (128, 128) and img.dtype == np.uint8
    t = draw_landmark_sketch(lm[None], 128, thickness=2.0)[0, 0].numpy()
    on_np = img > 128
    assert on_np.sum() > 200
    assert (t[on_np] > -1).mean() > 0.95  # cv2's lines lie where the torch sketch draws
    parts = draw_landmark_sketch_np(lm.numpy(), 128, channels="parts")
    assert parts.shape == (128, 128, 9) and np.array_equal(parts.max(-1) > 0, img > 0)
