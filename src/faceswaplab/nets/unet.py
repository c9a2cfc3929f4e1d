"""The U-Net generator of pix2pix: an encoder-decoder with skip connections between mirrored layers."""

from __future__ import annotations

import torch
from torch import nn

from faceswaplab.nets.init import norm_layer


class UnetGenerator(nn.Module):
    """(B, in_ch, H, W) -> (B, out_ch, H, W) in [-1, 1]; H and W must be multiples of 2**num_downs.

    Down path: C(w)-C(2w)-C(4w)-C(8w)-C(8w)...; the innermost layer reaches 1x1 when ``2**num_downs == H``.
    Dropout (the pix2pix noise source, Isola et al. 2017, section 3.1) follows the decoder layers of the
    8w-to-8w blocks between the 8w block and the innermost one, as in the reference U-Net: three at 256 px
    (``num_downs=8``), two at 128 px, one at 64 px, none below.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        width: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
    ):
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        Norm = norm_layer(norm)
        bias = norm != "batch"
        chans = [width * min(2**i, 8) for i in range(num_downs)]  # output channels of each down layer
        self.downs = nn.ModuleList()
        prev = in_channels
        for i, ch in enumerate(chans):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2, True))
            layers.append(nn.Conv2d(prev, ch, 4, 2, 1, bias=bias))
            if 0 < i < num_downs - 1:  # no norm on the first layer nor on the 1x1 bottleneck
                layers.append(Norm(ch))
            self.downs.append(nn.Sequential(*layers))
            prev = ch
        self.ups = nn.ModuleList()
        for i in reversed(range(num_downs)):
            inner = chans[i] if i == num_downs - 1 else chans[i] * 2  # skip concatenation doubles the input
            if i == 0:
                self.ups.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(inner, out_channels, 4, 2, 1), nn.Tanh()))
                continue
            out = chans[i - 1]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(inner, out, 4, 2, 1, bias=bias), Norm(out)]
            if dropout > 0 and 4 <= i <= num_downs - 2:  # the 8w -> 8w blocks, innermost excluded
                layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the first up layer directly
        for up in self.ups:
            x = up(x)
            if skips:
                x = torch.cat([skips.pop(), x], 1)
        return x
