"""Reconstruction objectives of the DeepFakes autoencoder: ours and the presets of faceswap and DeepFaceLab.

Each takes the decoded face and the real one (B, 3, S, S) in [-1, 1], the face mask (B, 1, S, S) and the region
masks (B, 2, S, S: eyes, mouth), and returns named terms to sum. The two presets work on images in [0, 1], as
the projects they copy do, so that their weights mean what they mean there.

* ``l1_ssim`` (this library's): L1 inside the face mask with each pixel weighted ``1 + eye_multiplier * eyes +
  mouth_multiplier * mouth``, plus ``1 - SSIM`` of the masked faces.
* ``faceswap`` (its trainer's defaults: SSIM then MSE at 100 %, "penalized mask loss", eye multiplier 3, mouth
  multiplier 2): per-pixel DSSIM and squared error, each multiplied by the face mask, then by ``1 + 3`` inside
  the eyes and ``1 + 2`` inside the mouth (the multipliers add ``loss * region * multiplier`` to the loss), averaged
  over all pixels.
* ``deepfacelab`` (SAEHD's loss below 256 px): ``10 * (1 - SSIM) / 2`` with a window of resolution / 11.6 (at 256
  px and above half of it with resolution / 23.2 added), ``10 * MSE`` of the masked faces, and the "eyes and
  mouth priority" ``300 * mean |real - fake|`` inside the eye and mouth regions. The face mask is softened as
  DeepFaceLab does: a Gaussian blur of sigma resolution / 32 (kernel 4 sigma, zero padding), clipped to 0.5
  and doubled, so it stays 1 inside and fades out over a few pixels at its edge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faceswaplab.losses.reconstruction import masked_l1, ssim, ssim_loss, ssim_map

PRESETS = ("l1_ssim", "faceswap", "deepfacelab")


def soften_mask(mask: torch.Tensor) -> torch.Tensor:
    """DeepFaceLab's training mask: blur (B, 1, S, S) by sigma max(1, S // 32), clip to [0, 0.5], double."""
    sigma = max(1, mask.shape[-1] // 32)
    k = max(3, 4 * sigma) | 1
    x = torch.arange(k, dtype=mask.dtype, device=mask.device) - k // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = (g[:, None] * g[None, :]) / (g.sum() ** 2)
    blurred = F.conv2d(mask, kernel[None, None], padding=k // 2)
    return blurred.clamp(0, 0.5) * 2


def reconstruction_terms(preset: str, fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
                         parts: torch.Tensor, *, l1_weight: float = 0.0, mse_weight: float = 0.0,
                         ssim_weight: float = 0.0, eye_multiplier: float = 0.0, mouth_multiplier: float = 0.0,
                         eyes_mouth_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Named loss terms (``loss_l1``, ``loss_mse``, ``loss_ssim``, ``loss_eyes_mouth``) of `preset`, weighted;
    terms with weight 0 are left out."""
    eyes, mouth = parts[:, :1], parts[:, 1:2]
    terms: dict[str, torch.Tensor] = {}
    if preset == "l1_ssim":
        if l1_weight:
            weight = 1 + eye_multiplier * eyes + mouth_multiplier * mouth
            terms["loss_l1"] = l1_weight * masked_l1(fake, real, mask, weight)
        if ssim_weight:  # on the face only: the background is not the decoder's job
            terms["loss_ssim"] = ssim_weight * ssim_loss(fake * mask, real * mask)
        return terms
    f01, r01 = (fake + 1) / 2, (real + 1) / 2
    if preset == "faceswap":
        weight = mask * (1 + eye_multiplier * eyes) * (1 + mouth_multiplier * mouth)  # (B, 1, S, S)
        if ssim_weight:
            dssim = 1 - ssim_map(f01, r01, data_range=1.0, padding="reflect")
            terms["loss_ssim"] = ssim_weight * (dssim * weight).mean()
        if mse_weight:
            terms["loss_mse"] = mse_weight * ((f01 - r01) ** 2 * weight).mean()
        return terms
    if preset == "deepfacelab":
        size = real.shape[-1]
        soft = soften_mask(mask)
        fm, rm = f01 * soft, r01 * soft
        if ssim_weight:
            windows = [int(size / 11.6)] if size < 256 else [int(size / 11.6), int(size / 23.2)]
            terms["loss_ssim"] = ssim_weight * sum(
                (1 - ssim(fm, rm, data_range=1.0, window=max(1, w))) / 2 for w in windows) / len(windows)
        if mse_weight:
            terms["loss_mse"] = mse_weight * ((fm - rm) ** 2).mean()
        if eyes_mouth_weight:
            em = torch.clamp(eyes + mouth, 0, 1)
            terms["loss_eyes_mouth"] = eyes_mouth_weight * (f01 * em - r01 * em).abs().mean()
        return terms
    raise ValueError(f"unknown DeepFakes loss {preset!r}: expected one of {PRESETS}")
