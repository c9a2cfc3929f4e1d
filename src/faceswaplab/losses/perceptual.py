"""Perceptual (feature-matching) loss on a frozen feature network: pix2pixHD's VGG loss by default.

pix2pixHD (Wang et al. 2018, eq. 6 and its reference code) sums the L1 distances of the VGG19 maps relu1_1 ..
relu5_1 with weights 1/32, 1/16, 1/8, 1/4, 1, on images in [-1, 1] as they come (no ImageNet normalisation, as
in that code). Any module mapping (B, 3, H, W) to a list of maps can stand in for VGG19 (``network``), e.g. an
offline face network whose weights ship with a package.
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from faceswaplab.faces.backends import MissingWeightsError
from faceswaplab.nets.vgg import VGG19Features

log = logging.getLogger(__name__)

VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


class VGGLoss(nn.Module):
    """``loss(fake, real) = sum_i w_i * ||F_i(fake) - F_i(real)||_1`` (means over elements), real detached.

    Args:
        pretrained: ImageNet VGG19 weights from torchvision's cache (a clear error when missing), or random ones.
        network: another frozen feature network returning a list of maps; replaces VGG19.
        layer_weights: one weight per map; the default is pix2pixHD's for the five VGG19 maps, and equal weights
            for another network.
    """

    def __init__(self, pretrained: bool = True, network: nn.Module | None = None,
                 layer_weights: Sequence[float] | None = None):
        super().__init__()
        self.network = network if network is not None else VGG19Features(pretrained)
        self.network.requires_grad_(False)
        if layer_weights is None and network is None:
            layer_weights = VGG_LAYER_WEIGHTS
        self.layer_weights = None if layer_weights is None else tuple(float(w) for w in layer_weights)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake_feats, real_feats = self.network(fake), self.network(real)
        weights = self.layer_weights or (1.0,) * len(fake_feats)
        if len(weights) != len(fake_feats):
            raise ValueError(f"{len(weights)} layer weights for {len(fake_feats)} feature maps")
        return sum(w * F.l1_loss(f, r.detach()) for w, f, r in zip(weights, fake_feats, real_feats))


def vgg_loss_if_cached(without: str, device: torch.device | str = "cpu") -> VGGLoss | None:
    """VGG19's :class:`VGGLoss` on `device` where torchvision's weights are cached; else None and one warning,
    `without` (what the caller does instead) followed by the missing file and how to get it."""
    try:
        return VGGLoss(pretrained=True).to(device)
    except MissingWeightsError as e:
        log.warning("%s (%s)", without, e)
        return None
