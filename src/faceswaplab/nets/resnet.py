"""The ResNet image-to-image generator of CycleGAN (Johnson et al.'s style-transfer network).

c7s1-w, `n_downsampling` stride-2 downsamplings (two in CycleGAN, four in pix2pixHD's global generator G1),
`n_blocks` residual blocks at 2**n_downsampling * w channels, as many upsamplings, c7s1-3, tanh.
"""

from __future__ import annotations

import torch
from torch import nn

from faceswaplab.nets.init import norm_layer


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0):
        super().__init__()
        Norm = norm_layer(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), Norm(channels), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), Norm(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(B, in_ch, H, W) -> (B, out_ch, H, W) in [-1, 1]; H and W must be multiples of 2**n_downsampling."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        n_downsampling: int = 2,
    ):
        super().__init__()
        Norm = norm_layer(norm)
        bias = norm == "instance"  # batch norm has its own shift; instance norm without affine has none
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7, bias=bias),
            Norm(width),
            nn.ReLU(True),
        ]
        ch = width
        for _ in range(n_downsampling):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias), Norm(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch, norm, dropout) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                Norm(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
