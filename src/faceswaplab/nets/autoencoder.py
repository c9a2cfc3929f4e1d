"""The DeepFakes autoencoders: faceswap's "original" layout (one shared encoder, one decoder per identity) and
DeepFaceLab's LIAE (one shared encoder, a shared "inter" AB and an inter for B only, one shared decoder).

Encoder at 64 px: four stride-2 5x5 convs (w, 2w, 4w, 8w channels) down to 4x4, then the "inter" part: dense to
a `latent`-sized code, dense back to a 4x4 map of `dense_channels`, one upscale -> (B, code_channels, 8, 8).
Larger inputs add stride-2 stages, so the code always starts from a 4x4 map. The decoder upscales with pixel
shuffle (4w, 2w, w channels at 64 px) to the input size and ends in tanh, with an optional sigmoid mask channel.
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


def conv_encoder(size: int, width: int) -> tuple[nn.Sequential, int]:
    """The stride-2 conv stack (B, 3, S, S) -> (B, C, 4, 4) and its flattened size 16 * C."""
    n = _stages(size)
    chans = [3] + [width * 2 ** min(i, 3) for i in range(n)]
    return nn.Sequential(*[_down(chans[i], chans[i + 1]) for i in range(n)]), chans[-1] * 16


class Inter(nn.Module):
    """Conv features (B, C, 4, 4) -> code (B, code_channels, 8, 8): dense to `latent`, dense to a 4x4 map, upscale."""

    def __init__(self, in_features: int, latent: int = 1024, dense_channels: int = 1024, code_channels: int = 512):
        super().__init__()
        self.dense_channels = dense_channels
        self.dense = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, latent), nn.Linear(latent, 4 * 4 * dense_channels)
        )
        self.up = Upscale(dense_channels, code_channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = self.dense(h)  # (B, 16 * dense_channels)
        return self.up(z.view(-1, self.dense_channels, 4, 4))  # (B, code_channels, 8, 8)


class Encoder(Inter):
    """(B, 3, S, S) -> (B, code_channels, 8, 8); S a power of two >= 16 (64 in the original): convs, then inter."""

    def __init__(
        self, size: int = 64, width: int = 128, latent: int = 1024, dense_channels: int = 1024, code_channels: int = 512
    ):
        convs, features = conv_encoder(size, width)
        super().__init__(features, latent, dense_channels, code_channels)
        self.convs = convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.convs(x))


class LIAE(nn.Module):
    """DeepFaceLab's LIAE: ``forward(x, side)`` -> the decoder's output for identity `side` ("A" or "B").

    Side A's code is ``[inter_AB(e), inter_AB(e)]``, side B's ``[inter_B(e), inter_AB(e)]`` (e the shared
    encoder's features, concatenated on channels), decoded by one shared decoder. In DeepFaceLab's terms A is
    the "src" (the identity put into videos) and B the "dst" (the faces replaced): its swap is side A's code of a
    B face.
    """

    def __init__(self, size: int = 128, enc_width: int = 64, latent: int = 256, dense_channels: int = 512,
                 code_channels: int = 512, dec_width: int = 64, mask: bool = False):
        super().__init__()
        self.encoder, features = conv_encoder(size, enc_width)
        self.inter_AB = Inter(features, latent, dense_channels, code_channels)
        self.inter_B = Inter(features, latent, dense_channels, code_channels)
        self.decoder = Decoder(size, dec_width, 2 * code_channels, mask)

    def forward(self, x: torch.Tensor, side: str):
        return self.decode(self.encoder(x), side)

    def decode(self, h: torch.Tensor, side: str):
        """The output for `side` from the shared encoder's features `h` (B, C, 4, 4)."""
        ab = self.inter_AB(h)
        first = ab if side == "A" else self.inter_B(h)
        return self.decoder(torch.cat([first, ab], 1))  # code (B, 2 * code_channels, 8, 8)


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
