"""FID and KID: equal to direct numpy/scipy computations on the same features; clear errors offline."""

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from faceswaplab.metrics import FID, KID, MetricUnavailable, WeightsUnavailable, frechet_distance, kernel_distance


class TinyFeatures(nn.Module):
    """A small random-weight CNN: (B, 3, H, W) -> (B, 16) features."""

    num_features = 16

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def sets():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(64, 3, 32, 32, generator=g) * 2 - 1
    fake = (torch.rand(64, 3, 32, 32, generator=g) * 1.6 - 0.6).clamp(-1, 1)  # shifted distribution
    return real, fake


def test_fid_equals_direct_frechet_distance_on_the_same_features(sets):
    real, fake = sets
    net = TinyFeatures().eval()
    fid = FID(feature=net)
    for s in range(0, 64, 16):  # batched updates accumulate the same statistics
        fid.update(real[s:s + 16], real=True)
        fid.update(fake[s:s + 16], real=False)
    with torch.no_grad():
        fr, ff = net(real).numpy(), net(fake).numpy()
    expected = frechet_distance(fr, ff)
    assert expected > 1e-3
    assert float(fid.compute()) == pytest.approx(expected, rel=1e-3, abs=1e-5)
    assert frechet_distance(fr, fr) == pytest.approx(0.0, abs=1e-6)


def test_kid_equals_direct_polynomial_mmd_on_the_same_features(sets):
    real, fake = sets
    net = TinyFeatures().double().eval()  # float64 features: the cubic kernel amplifies float32 rounding
    real, fake = real.double(), fake.double()
    # One subset holding every sample: the subset estimate is the full unbiased MMD².
    kid = KID(feature=net, subsets=1, subset_size=64)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    mean, std = kid.compute()
    with torch.no_grad():
        expected = kernel_distance(net(real).numpy(), net(fake).numpy())
    assert expected > 0
    assert float(mean) == pytest.approx(expected, rel=1e-9)
    assert float(std) == 0.0


def test_inception_features_unavailable_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    if importlib.util.find_spec("torch_fidelity") is None:
        with pytest.raises(MetricUnavailable, match="pip install torch-fidelity"):
            FID()
        with pytest.raises(MetricUnavailable, match="torch-fidelity"):
            KID()
    else:
        with pytest.raises(WeightsUnavailable, match="weights-inception-2015-12-05-6726825d.pth"):
            FID()
    assert not any(tmp_path.rglob("*.pth"))


def test_frechet_distance_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    b = rng.normal(size=(4000, 3)) * 2.0 + 1.0  # N(1, 4 I)
    # ||mu_a - mu_b||² + tr(I + 4I - 2 * 2I) = 3 + 3
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
