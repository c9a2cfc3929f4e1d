"""Weight initialisation and normalisation layer choice shared by the generators and discriminators."""

from __future__ import annotations

import functools

from torch import nn


def norm_layer(kind: str):
    """A constructor ``f(channels) -> nn.Module`` for ``"instance"``, ``"batch"`` or ``"none"`` normalisation."""
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: expected 'instance', 'batch' or 'none'")


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv and linear weights (N(0, gain) as in the GAN papers, or xavier/kaiming); returns `net`."""

    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
            else:
                raise ValueError(f"unknown init {kind!r}: expected 'normal', 'xavier' or 'kaiming'")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    return net.apply(init)
