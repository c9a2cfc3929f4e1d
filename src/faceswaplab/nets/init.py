"""Weight initialisation, normalisation layer choice and inference modes shared by the generators."""

from __future__ import annotations

import contextlib
import functools

import torch
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


@contextlib.contextmanager
def sampling_mode(net: nn.Module):
    """Run `net` as pix2pix samples at test time: dropout on and batch norm from the batch's own statistics.

    Running statistics are neither used nor updated; every module's mode is restored on exit.
    """
    saved = [(m, m.training, getattr(m, "track_running_stats", None)) for m in net.modules()]
    try:
        for m in net.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.train(True)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train(True)
                m.track_running_stats = False  # forward then passes no running buffers: batch statistics only
        yield net
    finally:
        for m, training, track in saved:
            m.training = training
            if track is not None:
                m.track_running_stats = track


@contextlib.contextmanager
def eval_mode(net: nn.Module):
    """Run `net` in eval mode (running statistics, no dropout), restoring its modes on exit."""
    saved = [(m, m.training) for m in net.modules()]
    try:
        yield net.eval()
    finally:
        for m, training in saved:
            m.training = training


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device):
    """Draw random numbers from `seed` inside the block without touching the global generators (None: no-op)."""
    if seed is None:
        yield
        return
    cuda = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield
