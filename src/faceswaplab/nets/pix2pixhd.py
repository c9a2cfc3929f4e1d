"""pix2pixHD's coarse-to-fine generator (Wang et al. 2018, section 3.2): a local enhancer G2 around a global G1.

G1 is the ResNet generator with four downsamplings and twice the width, run on the input downsampled 2x; its
last feature map (before the output convolution) is added to G2's front-end features at half resolution, and
G2's residual blocks and upsampling draw the full-resolution image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceswaplab.nets.init import norm_layer
from faceswaplab.nets.resnet import ResidualBlock, ResnetGenerator


class LocalEnhancer(nn.Module):
    """(B, in_ch, H, W) -> (B, out_ch, H, W) in [-1, 1]; H and W multiples of 2 * 2**n_downsample_global.

    ``global_net`` is G1 without its output layers (its parameters are the ones pix2pixHD keeps fixed during the
    first ``niter_fix_global`` epochs); ``local_down`` and ``local_up`` are G2's front end and back end.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 32,
        n_downsample_global: int = 4,
        n_blocks_global: int = 9,
        n_blocks_local: int = 3,
        norm: str = "instance",
    ):
        super().__init__()
        Norm = norm_layer(norm)
        g1 = ResnetGenerator(in_channels, out_channels, width * 2, n_blocks_global, norm,
                             n_downsampling=n_downsample_global)
        self.global_net = nn.Sequential(*list(g1.model)[:-3])  # drop the output pad, conv and tanh
        self.local_down = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7), Norm(width), nn.ReLU(True),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1), Norm(width * 2), nn.ReLU(True),
        )
        self.local_up = nn.Sequential(
            *[ResidualBlock(width * 2, norm) for _ in range(n_blocks_local)],
            nn.ConvTranspose2d(width * 2, width, 3, stride=2, padding=1, output_padding=1), Norm(width), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)  # (B, C, H/2, W/2)
        return self.local_up(self.local_down(x) + self.global_net(half))
