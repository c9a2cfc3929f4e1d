"""Reconstruction losses of the autoencoder: masked L1 with region priorities and SSIM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_l1(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean absolute error over the pixels of `mask` (B, 1, H, W), each pixel weighted by `weight` (B, 1, H, W).

    Without a mask this is the plain L1. The normaliser is the mask's weighted area, so the loss does not shrink
    with the face's size in the crop.
    """
    w = torch.ones_like(prediction[:, :1]) if mask is None else mask
    if weight is not None:
        w = w * weight
    err = (prediction - target).abs() * w
    return err.sum() / (w.sum() * prediction.shape[1]).clamp_min(1e-8)


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    window: int = 11,
    sigma: float = 1.5,
    padding: str = "valid",
) -> torch.Tensor:
    """Per-window structural similarity (B, C, H', W') of (B, C, H, W) images (Wang et al. 2004).

    ``padding="valid"``: windows inside the image (H' = H - window + 1); ``"reflect"``: one per pixel, mirrored
    borders (H' = H).
    """
    c = x.shape[1]
    if padding == "reflect":
        p = window // 2
        x, y = F.pad(x, (p, p, p, p), mode="reflect"), F.pad(y, (p, p, p, p), mode="reflect")
    elif padding != "valid":
        raise ValueError(f"unknown padding {padding!r}: expected 'valid' or 'reflect'")
    k1, k2 = 0.01, 0.03
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    win = _gaussian_window(window, sigma, c, x.device, x.dtype)
    mu_x = F.conv2d(x, win, groups=c)
    mu_y = F.conv2d(y, win, groups=c)
    var_x = F.conv2d(x * x, win, groups=c) - mu_x**2
    var_y = F.conv2d(y * y, win, groups=c) - mu_y**2
    cov = F.conv2d(x * y, win, groups=c) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    window: int = 11,
    sigma: float = 1.5,
    reduction: str = "mean",
    padding: str = "valid",
) -> torch.Tensor:
    """Structural similarity of (B, C, H, W) images with a Gaussian window (Wang et al. 2004).

    `data_range` is max - min of the pixel values (2 for images in [-1, 1]). ``padding="valid"`` averages over
    windows inside the image (as scikit-image does), ``"reflect"`` over every pixel with mirrored borders (as
    torchmetrics does). ``reduction="none"`` gives (B,).
    """
    per_image = ssim_map(x, y, data_range, window, sigma, padding).flatten(1).mean(1)
    return per_image.mean() if reduction == "mean" else per_image


def ssim_loss(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """``1 - SSIM``, the DSSIM-style term of the autoencoder's loss."""
    return 1.0 - ssim(x, y, data_range=data_range)
