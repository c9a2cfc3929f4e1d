"""Realism of the outputs as a set: FID and KID (torchmetrics), on Inception-v3 features or any feature network.

The default features are torch-fidelity's Inception-v3 (pool3, 2048-d), the reference FID network. It needs the
``torch-fidelity`` package (torchmetrics' ``image`` extra) and its weights file
``weights-inception-2015-12-05-6726825d.pth`` in ``$TORCH_HOME/hub/checkpoints`` (or ``weights_path=``); both are
checked before anything is loaded, and a missing one raises
:class:`~faceswaplab.metrics.weights.MetricUnavailable` (:class:`WeightsUnavailable` for the file).

Pass ``feature=<nn.Module>`` (images (B, 3, H, W) in [-1, 1] -> (B, D) features) for another feature space, e.g.
a domain-specific network for the synthetic faces. Both metrics are set-level: they have no per-sample values
(KID reports its spread over random subsets). ``update(images, real: bool)``: real = target frames, fake = outputs.

Functional twins on features: :func:`frechet_distance`, :func:`kernel_distance` (numpy/scipy, float64).

Preprocessing: with Inception, crops in [-1, 1] become uint8 RGB and torch-fidelity's network resizes them to
299 x 299 (bilinear) inside, the convention of the reference FID code; KID uses subsets of at most the smaller set's
size.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from faceswaplab.metrics.weights import inception_fid_weights


def _inception(weights_path=None) -> nn.Module:
    """torch-fidelity's FID Inception-v3 (2048-d pool features), loaded from a checked local file."""
    from pathlib import Path

    from faceswaplab.metrics.weights import WeightsUnavailable, require_package

    if weights_path is None:
        path = inception_fid_weights()
    else:
        require_package("torch_fidelity", "torch-fidelity", "FID/KID with the Inception feature extractor")
        path = Path(weights_path)
        if not path.is_file():
            raise WeightsUnavailable("FID/KID Inception-v3 (torch-fidelity)", path, "Pass an existing weights file.")
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                              feature_extractor_weights_path=str(path))


class _FeatureInput:
    """Mixin: map our [-1, 1] images to what the feature network expects (uint8 for Inception, as-is otherwise)."""

    def _setup(self, feature, weights_path):
        self._uint8 = feature == "inception"
        if self._uint8:
            return _inception(weights_path), 2048
        if not isinstance(feature, nn.Module):
            raise TypeError(f"feature must be 'inception' or an nn.Module, got {type(feature).__name__}")
        dim = getattr(feature, "num_features", None)
        return feature, dim

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if self._uint8:
            return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return images


class _NumFeatures(nn.Module):
    """Gives a feature network a `num_features` attribute, so torchmetrics does not probe it with a 299 px image."""

    def __init__(self, net: nn.Module, num_features: int):
        super().__init__()
        self.net, self.num_features = net, int(num_features)

    def forward(self, x):
        return self.net(x)


class FID(_FeatureInput, FrechetInceptionDistance):
    """Fréchet distance between the feature distributions of real (target) and fake (output) images.

    ``FID(feature="inception" | nn.Module, num_features=None, weights_path=None)``: a custom module maps
    (B, 3, H, W) in [-1, 1] to (B, D); give `num_features` = D (else it is probed with one input of
    `input_img_size`). ``update(images, real)``.
    """

    higher_is_better = False

    def __init__(self, feature: str | nn.Module = "inception", num_features: int | None = None, weights_path=None,
                 input_img_size: tuple[int, int, int] = (3, 128, 128), **kwargs):
        net, dim = self._setup(feature, weights_path)
        dim = num_features or dim
        if dim is not None and not hasattr(net, "num_features"):
            net = _NumFeatures(net, dim)
        super().__init__(feature=net, normalize=not self._uint8, input_img_size=input_img_size, **kwargs)

    def update(self, images: torch.Tensor, real: bool) -> None:
        super().update(self._prepare(images), real)


class KID(_FeatureInput, KernelInceptionDistance):
    """Kernel (polynomial MMD²) distance between real and fake features; ``compute() -> (mean, std)`` over
    `subsets` random subsets of `subset_size` samples (at most the number of samples of each set)."""

    higher_is_better = False

    def __init__(self, feature: str | nn.Module = "inception", weights_path=None, subsets: int = 100,
                 subset_size: int = 1000, **kwargs):
        net, _ = self._setup(feature, weights_path)
        super().__init__(feature=net, subsets=subsets, subset_size=subset_size, **kwargs)

    def update(self, images: torch.Tensor, real: bool) -> None:
        super().update(self._prepare(images), real)

    def compute(self):
        # torchmetrics refuses subsets larger than a set; a benchmark of a few dozen pairs then cannot report KID
        # at the default size. Subsets of at most the smaller set's size keep the estimator unbiased.
        n = min(sum(len(f) for f in self.real_features), sum(len(f) for f in self.fake_features))
        size = self.subset_size
        self.subset_size = min(size, n)
        try:
            return super().compute()
        finally:
            self.subset_size = size


def few_samples_note(samples: int, dimensions: int) -> str | None:
    """A warning for a set-level distance estimated from fewer samples than feature dimensions (the covariance is
    then singular and the value strongly biased with the sample count: compare only at equal sample counts)."""
    if samples < dimensions:
        return (f"estimated from {samples} samples per set for {dimensions}-d features (fewer samples than "
                "dimensions: biased upwards; compare only values from equal sample counts)")
    return None


def frechet_distance(real_features, fake_features) -> float:
    """The Fréchet distance between Gaussians fitted to (N, D) and (M, D) feature sets (scipy ``sqrtm``)."""
    from scipy import linalg

    a, b = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if np.iscomplexobj(root):  # numerical noise only: the product of two PSD matrices has a real square root
        root = root.real
    d = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root)
    return float(max(d, 0.0))  # >= 0 in exact arithmetic; rounding can leave -1e-7 for identical sets


def kernel_distance(real_features, fake_features, degree: int = 3, gamma: float | None = None,
                    coef: float = 1.0) -> float:
    """Unbiased MMD² with the polynomial kernel ``(gamma x.y + coef)^degree`` (KID) between two equal-size sets."""
    x, y = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    m = len(x)
    if len(y) != m:
        raise ValueError(f"kernel_distance needs sets of equal size, got {len(x)} and {len(y)}")
    g = 1.0 / x.shape[1] if gamma is None else gamma
    kxx, kyy, kxy = ((p @ q.T * g + coef) ** degree for p, q in ((x, x), (y, y), (x, y)))
    off = lambda k: k.sum() - np.trace(k)  # noqa: E731
    return float((off(kxx) + off(kyy)) / (m * (m - 1)) - 2.0 * kxy.mean())


class IdentityFeatureFD(Metric):
    """Fréchet distance between the identity embedder's features of real (target) and fake (output) images: an
    offline stand-in for FID when the Inception weights are absent (not comparable with FID values); lower is
    better. ``update(images, real, landmarks=None)``."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, embedder=None, **kwargs):
        from faceswaplab.metrics.embedders import DEFAULT_EMBEDDER, FaceEmbedder, build_embedder

        super().__init__(**kwargs)
        self.embedder = embedder if isinstance(embedder, FaceEmbedder) else build_embedder(embedder or DEFAULT_EMBEDDER)
        self.add_state("real", default=[], dist_reduce_fx="cat")
        self.add_state("fake", default=[], dist_reduce_fx="cat")

    def update(self, images: torch.Tensor, real: bool, landmarks=None) -> None:
        (self.real if real else self.fake).append(self.embedder.embed(images, landmarks).double())

    def compute(self) -> torch.Tensor:
        from torchmetrics.utilities import dim_zero_cat

        return torch.tensor(frechet_distance(dim_zero_cat(self.real).numpy(), dim_zero_cat(self.fake).numpy()))
