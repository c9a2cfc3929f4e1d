"""Adversarial objectives: least squares (LSGAN, CycleGAN's choice), vanilla (pix2pix) and hinge."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GANLoss(nn.Module):
    """``loss(prediction, real: bool)`` for one discriminator output or a list of them (multi-scale).

    A list entry may be a ``(logits, features)`` pair as returned by ``forward(..., features=True)``; the losses of
    the scales are summed, as pix2pixHD does (Wang et al. 2018, eq. 4 sums its discriminators' objectives). For
    hinge, ``for_discriminator=False`` gives the generator's ``-mean(D(G(x)))``.
    """

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ("lsgan", "vanilla", "hinge"):
            raise ValueError(f"unknown GAN loss {mode!r}: expected 'lsgan', 'vanilla' or 'hinge'")
        self.mode = mode

    def _single(self, pred: torch.Tensor, real: bool, for_discriminator: bool) -> torch.Tensor:
        if self.mode == "lsgan":
            return F.mse_loss(pred, torch.full_like(pred, float(real)))
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, float(real)))
        if not for_discriminator:
            return -pred.mean()
        return F.relu(1.0 - pred).mean() if real else F.relu(1.0 + pred).mean()

    def forward(self, prediction, real: bool, for_discriminator: bool = True) -> torch.Tensor:
        preds = prediction if isinstance(prediction, (list, tuple)) else [prediction]
        preds = [p[0] if isinstance(p, (list, tuple)) else p for p in preds]
        return torch.stack([self._single(p, real, for_discriminator) for p in preds]).sum()


def feature_matching_loss(fake_outputs: list, real_outputs: list) -> torch.Tensor:
    """pix2pixHD's feature-matching loss (Wang et al. 2018, eq. 4) weighted as its reference code.

    Both arguments are lists over scales of ``(logits, features)`` pairs (real features are detached). Each
    layer's L1 distance is weighted by ``4 / n_feature_layers`` and each scale by ``1 / n_scales``, then summed:
    with 2 scales of 4 feature layers (``n_layers=3``), every term counts 1/2.
    """
    total = fake_outputs[0][0].new_zeros(())
    for (_, fake_feats), (_, real_feats) in zip(fake_outputs, real_outputs):
        w = 4.0 / len(fake_feats) / len(fake_outputs)
        for f, r in zip(fake_feats, real_feats):
            total = total + w * F.l1_loss(f, r.detach())
    return total
