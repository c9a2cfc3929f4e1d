"""Perceptual and pixel fidelity: LPIPS, background LPIPS, SSIM and PSNR (images (B, 3, H, W) in [-1, 1]).

* :class:`LPIPS`: the ``lpips`` package's learned distance (AlexNet trunk by default) for reconstruction (A -> A).
  Its trunk uses torchvision's ImageNet weights (``$TORCH_HOME/hub/checkpoints``, checked before loading: a
  missing file raises :class:`~faceswaplab.metrics.weights.WeightsUnavailable`); the linear calibration layers
  ship inside the ``lpips`` package. ``pnet_rand=True`` builds a randomly initialised trunk (no download), as the
  package's own switch does.
* :class:`BackgroundLPIPS`: background preservation of a swap, output vs target outside the face. Both images get
  the face region (the target's face hull mask, :func:`faceswaplab.faces.masks.face_hull_mask`, or a given mask;
  every pixel where it is > 0) replaced by the same constant (0, mid grey) before LPIPS, so only what lies outside
  the face can differ. (The trunk's receptive fields still see the constant region next to the background, the
  same in both images, so it adds no distance of its own.)
* :class:`SSIM` (Gaussian window 11, sigma 1.5, valid windows: :func:`faceswaplab.losses.ssim`) and :class:`PSNR`
  (data range 2; the MSE is floored at 1e-10, so identical images give 100 dB rather than infinity).
"""

from __future__ import annotations

import functools

import torch

from faceswaplab.losses import ssim as _ssim
from faceswaplab.metrics.base import PerSampleMetric
from faceswaplab.metrics.weights import torchvision_weights

LPIPS_TRUNKS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


def lpips_model(net: str = "alex", pnet_rand: bool = False):
    """An ``lpips.LPIPS`` model (eval mode, frozen) with the calibrated linear layers.

    Raises :class:`WeightsUnavailable` when the trunk's torchvision weights are not cached (unless `pnet_rand`).
    """
    if net not in LPIPS_TRUNKS:
        raise ValueError(f"LPIPS net must be one of {sorted(LPIPS_TRUNKS)}, got {net!r}")
    if not pnet_rand:
        torchvision_weights(LPIPS_TRUNKS[net])
    return _lpips_model(net, pnet_rand) if not pnet_rand else _build_lpips(net, True)


@functools.lru_cache(maxsize=None)
def _lpips_model(net: str, pnet_rand: bool):
    return _build_lpips(net, pnet_rand)


def _build_lpips(net: str, pnet_rand: bool):
    import warnings

    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=True, net=net, pnet_rand=pnet_rand, verbose=False)
    return model.eval().requires_grad_(False)


def lpips_distance(x: torch.Tensor, y: torch.Tensor, model) -> torch.Tensor:
    """LPIPS per sample, (B,), between images in [-1, 1] with an ``lpips.LPIPS`` `model`."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"need two (B, 3, H, W) batches of the same shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    p = next(model.parameters())
    with torch.no_grad():
        return model(x.to(p), y.to(p)).reshape(-1)


def face_region_mask(landmarks: torch.Tensor, size: int | tuple[int, int], dilate: float = 0.0) -> torch.Tensor:
    """The face hull (with forehead) of (B, 68, 2) landmarks, (B, 1, H, W) in [0, 1], grown by `dilate` pixels."""
    from faceswaplab.faces.masks import face_hull_mask

    return face_hull_mask(torch.as_tensor(landmarks).float(), size, dilate=dilate)


def background_lpips(output: torch.Tensor, target: torch.Tensor, model, target_landmarks=None, mask=None,
                     dilate: float = 0.0) -> torch.Tensor:
    """LPIPS per sample, (B,), outside the face: the face region (where `mask` (B, 1, H, W) > 0, or the face hull
    of `target_landmarks` grown by `dilate` pixels) of both images is replaced by the same constant (0) first."""
    if mask is None:
        if target_landmarks is None:
            raise ValueError("background_lpips needs target_landmarks or a mask")
        mask = face_region_mask(target_landmarks, tuple(output.shape[-2:]), dilate)
    # Every pixel the face region touches (mask > 0) is excluded, so a feathered edge counts as face.
    keep = (torch.as_tensor(mask).to(output.device) <= 0).to(output.dtype)
    return lpips_distance(output * keep, target.to(output) * keep, model)


def structural_similarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM per sample, (B,), images in [-1, 1]."""
    return _ssim(x.float(), y.float(), data_range=2.0, reduction="none")


def peak_snr(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """PSNR in dB per sample, (B,), images in [-1, 1] (data range 2)."""
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1).clamp_min(eps)
    return 10.0 * torch.log10(4.0 / mse)


class LPIPS(PerSampleMetric):
    """Mean LPIPS distance between outputs and references; lower is better. ``update(output, target)``."""

    higher_is_better = False
    plot_lower_bound = 0.0

    def __init__(self, net: str = "alex", pnet_rand: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.net = lpips_model(net, pnet_rand)

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self._add(lpips_distance(output, target, self.net))


class BackgroundLPIPS(PerSampleMetric):
    """Mean LPIPS outside the face region (background preservation); lower is better.

    ``update(output, target, target_landmarks=None, mask=None)``: the face region is `mask` (B, 1, H, W) or the
    face hull of the target's landmarks grown by `dilate` pixels.
    """

    higher_is_better = False
    plot_lower_bound = 0.0

    def __init__(self, net: str = "alex", pnet_rand: bool = False, dilate: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.net = lpips_model(net, pnet_rand)
        self.dilate = float(dilate)

    def update(self, output, target, target_landmarks=None, mask=None) -> None:
        self._add(background_lpips(output, target, self.net, target_landmarks, mask, self.dilate))


class SSIM(PerSampleMetric):
    """Mean SSIM between outputs and references; higher is better. ``update(output, target)``."""

    higher_is_better = True
    plot_upper_bound = 1.0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self._add(structural_similarity(output, target))


class PSNR(PerSampleMetric):
    """Mean PSNR (dB) between outputs and references; higher is better. ``update(output, target)``."""

    higher_is_better = True

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self._add(peak_snr(output, target))
