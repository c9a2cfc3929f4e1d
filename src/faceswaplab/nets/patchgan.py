"""PatchGAN discriminators: one patch classifier (pix2pix, CycleGAN) and the multi-scale stack of pix2pixHD.

With ``n_layers=3`` each output logit sees a 70x70 patch of the input. ``padding`` is 1 in pix2pix and CycleGAN,
2 in pix2pixHD's reference code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceswaplab.nets.init import norm_layer


class PatchDiscriminator(nn.Module):
    """(B, in_ch, H, W) -> logits (B, 1, H', W'); ``forward(x, features=True)`` also returns every layer's output."""

    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3, norm: str = "instance",
                 padding: int = 1):
        super().__init__()
        Norm = norm_layer(norm)
        bias = norm != "batch"
        p = padding
        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, width, 4, 2, p), nn.LeakyReLU(0.2, True))]
        ch = width
        for i in range(1, n_layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            blocks.append(
                nn.Sequential(nn.Conv2d(ch, out, 4, stride, p, bias=bias), Norm(out), nn.LeakyReLU(0.2, True))
            )
            ch = out
        blocks.append(nn.Conv2d(ch, 1, 4, 1, p))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, features: bool = False):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return (x, feats[:-1]) if features else x


class MultiscaleDiscriminator(nn.Module):
    """`num_d` PatchDiscriminators on the input downsampled 1x, 2x, 4x, ...; returns a list (one entry per scale)."""

    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3, norm: str = "instance", num_d: int = 2,
                 padding: int = 1):
        super().__init__()
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, width, n_layers, norm, padding) for _ in range(num_d)
        )

    def forward(self, x: torch.Tensor, features: bool = False) -> list:
        outputs = []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(d(x, features=features))
        return outputs
