"""The multi-scale feed-forward generator of texture networks (Ulyanov et al. 2016), as used for face swapping by
Korshunova et al. 2017 (section 3.1 and figure 2 of "Fast Face-swap Using Convolutional Neural Networks").

The input is seen at ``num_scales`` resolutions, halving from the full one (8 .. 128 px for a 128 px crop). Each
resolution goes through a block of convolutions (3x3, 3x3, 1x1, each followed by batch norm and a leaky ReLU);
the coarsest result is upsampled by 2 (nearest), concatenated with the next resolution's block along the channels,
and the concatenation goes through another block, and so on up to the full resolution, where a 1x1 convolution
gives the image. The channels grow by ``width`` with every resolution joined.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """3x3, 3x3, 1x1 convolutions (reflection padding), each with batch norm and LeakyReLU(0.01)."""
    layers: list[nn.Module] = []
    for k, c in ((3, cin), (3, cout), (1, cout)):
        layers += [nn.Conv2d(c, cout, k, padding=k // 2, padding_mode="reflect" if k > 1 else "zeros"),
                   nn.BatchNorm2d(cout), nn.LeakyReLU(0.01)]
    return nn.Sequential(*layers)


class MultiScaleGenerator(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> (B, 3, S, S) in [-1, 1]; S must be divisible by ``2 ** (num_scales - 1)``."""

    def __init__(self, num_scales: int = 5, width: int = 32, in_channels: int = 3, out_channels: int = 3):
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"num_scales must be at least 1, got {num_scales}")
        self.num_scales = num_scales
        self.branches = nn.ModuleList(conv_block(in_channels, width) for _ in range(num_scales))  # coarsest first
        self.joins = nn.ModuleList(conv_block((k + 1) * width, (k + 1) * width) for k in range(1, num_scales))
        self.to_image = nn.Conv2d(num_scales * width, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        n = self.num_scales
        if x.shape[-1] % 2 ** (n - 1) or x.shape[-2] % 2 ** (n - 1):
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by 2^{n - 1} ({n} scales)")
        h = self.branches[0](F.avg_pool2d(x, 2 ** (n - 1)) if n > 1 else x)  # (B, w, S/2^(n-1), ...)
        for k in range(1, n):
            f = 2 ** (n - 1 - k)
            xk = F.avg_pool2d(x, f) if f > 1 else x
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), self.branches[k](xk)], 1)
            h = self.joins[k - 1](h)  # (B, (k+1) w, S/f, S/f)
        return torch.tanh(self.to_image(h))
