"""LPIPS (against the lpips package on the same trunk weights), background LPIPS, SSIM and PSNR."""

import math

import lpips
import numpy as np
import pytest
import torch

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.metrics import (
    LPIPS, PSNR, SSIM, BackgroundLPIPS, WeightsUnavailable, background_lpips, lpips_distance, peak_snr,
    structural_similarity,
)


def _batch(renders):
    return torch.as_tensor(np.stack([r.image for r in renders])).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.fixture(scope="module")
def pair():
    faces = SyntheticFaces(0, 4)
    a = [faces.sample(i, 0, 64) for i in range(3)]
    b = [faces.sample(i, 1, 64) for i in range(3)]
    return _batch(a), _batch(b), torch.as_tensor(np.stack([r.landmarks for r in a]))


def test_lpips_equals_the_lpips_package_on_the_same_weights(pair):
    x, y, _ = pair
    ours = LPIPS(net="alex", pnet_rand=True)
    ref = lpips.LPIPS(pretrained=True, net="alex", pnet_rand=True, verbose=False).eval()
    ref.load_state_dict(ours.net.state_dict())  # the same random trunk + the package's calibrated linear layers
    expected = ref(x, y).reshape(-1)
    ours.update(x[:2], y[:2])
    ours.update(x[2:], y[2:])
    assert torch.allclose(ours.per_sample().float(), expected, atol=1e-6)
    assert torch.isclose(ours.compute().float(), expected.mean(), atol=1e-6)
    assert (expected > 0).all()
    assert torch.allclose(lpips_distance(x, x, ours.net), torch.zeros(3), atol=1e-7)


def test_background_lpips_ignores_the_face_region(pair):
    x, y, lm = pair
    net = LPIPS(pnet_rand=True).net
    # Outputs that differ from the target only inside the face region score 0; the full LPIPS does not.
    from faceswaplab.metrics.perceptual import face_region_mask

    mask = face_region_mask(lm, 64)
    swapped = x * (1 - mask) + y * mask
    assert float(lpips_distance(swapped, x, net).min()) > 0.01
    assert torch.allclose(background_lpips(swapped, x, net, target_landmarks=lm), torch.zeros(3), atol=1e-6)
    # With an empty mask it is the plain LPIPS.
    empty = torch.zeros(3, 1, 64, 64)
    assert torch.allclose(background_lpips(y, x, net, mask=empty), lpips_distance(y, x, net), atol=1e-6)
    m = BackgroundLPIPS(pnet_rand=True)
    m.net = net
    m.update(swapped, x, target_landmarks=lm)
    assert float(m.compute()) < 1e-6


def test_ssim_and_psnr_values(pair):
    x, y, _ = pair
    assert torch.allclose(structural_similarity(x, x), torch.ones(3), atol=1e-5)
    s = structural_similarity(x, y)
    assert (s < 0.95).all() and (s > -1).all()
    noisy = (x + 0.1).clamp(-1, 1)
    mse = (noisy - x).pow(2).flatten(1).mean(1).double()
    assert torch.allclose(peak_snr(noisy, x), 10 * torch.log10(4 / mse))
    assert math.isclose(float(peak_snr(x, x)[0]), 10 * math.log10(4 / 1e-10), rel_tol=1e-9)
    m_s, m_p = SSIM(), PSNR()
    m_s.update(x, y)
    m_p.update(x, y)
    assert torch.isclose(m_s.compute(), s.double().mean()) and m_p.per_sample().shape == (3,)
    assert m_s.higher_is_better and m_p.higher_is_better


def test_lpips_without_cached_trunk_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailable) as e:
        LPIPS(net="alex")
    assert "alexnet-owt-7be5be79.pth" in str(e.value)
    assert e.value.path == tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert not any(tmp_path.rglob("*.pth"))  # nothing was downloaded or created
