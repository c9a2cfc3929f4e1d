"""The DeepFakes autoencoder: one shared encoder, one decoder per identity (faceswap's "original" layout at 64 px).

Encoder at 64 px: four stride-2 5x5 convs (w, 2w, 4w, 8w channels) down to 4x4, dense to a `latent`-sized code,
dense back to a 4x4 map of `dense_channels`, one upscale -> (B, code_channels, 8, 8). Larger inputs add stride-2
stages, so the code always starts from a 4x4 map. The decoder upscales with pixel shuffle (4w, 2w, w channels at
64 px) to the input size and ends in tanh, with an optional sigmoid mask channel.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 5, 2, 2), nn.LeakyReLU(0.1, True))


class Upscale(nn.Module):
    """Conv to 4x channels then pixel shuffle: (B, cin, H, W) -> (B, cout, 2H, 2W)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, 1, 1)
        self.act = nn.LeakyReLU(0.1, True)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.act(self.conv(x)))


def _stages(size: int) -> int:
    n = int(math.log2(size)) - 2  # stride-2 stages from `size` down to 4x4
    if 2 ** (n + 2) != size or n < 2:
        raise ValueError(f"autoencoder input size must be a power of two >= 16, got {size}")
    return n


class Encoder(nn.Module):
    """(B, 3, S, S) -> (B, code_channels, 8, 8); S a power of two >= 16 (64 in the original)."""

    def __init__(
        self, size: int = 64, width: int = 128, latent: int = 1024, dense_channels: int = 1024, code_channels: int = 512
    ):
        super().__init__()
        n = _stages(size)
        chans = [3] + [width * 2 ** min(i, 3) for i in range(n)]
        self.convs = nn.Sequential(*[_down(chans[i], chans[i + 1]) for i in range(n)])
        self.dense_channels = dense_channels
        self.dense = nn.Sequential(
            nn.Flatten(), nn.Linear(chans[-1] * 16, latent), nn.Linear(latent, 4 * 4 * dense_channels)
        )
        self.up = Upscale(dense_channels, code_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.dense(self.convs(x))  # (B, 16 * dense_channels)
        return self.up(z.view(-1, self.dense_channels, 4, 4))  # (B, code_channels, 8, 8)


class Decoder(nn.Module):
    """(B, code_channels, 8, 8) -> image (B, 3, S, S) in [-1, 1] (and a mask (B, 1, S, S) in [0, 1] if `mask`)."""

    def __init__(self, size: int = 64, width: int = 64, code_channels: int = 512, mask: bool = False):
        super().__init__()
        n = _stages(size) - 1  # the encoder already upscaled 4 -> 8
        chans = [code_channels] + [min(width * 2 ** (n - 1 - i), code_channels) for i in range(n)]
        self.ups = nn.Sequential(*[Upscale(chans[i], chans[i + 1]) for i in range(n)])
        self.to_rgb = nn.Conv2d(chans[-1], 3, 5, 1, 2)
        self.to_mask = nn.Conv2d(chans[-1], 1, 5, 1, 2) if mask else None

    def forward(self, code: torch.Tensor):
        h = self.ups(code)
        rgb = torch.tanh(self.to_rgb(h))
        if self.to_mask is None:
            return rgb
        return rgb, torch.sigmoid(self.to_mask(h))
