"""Train/val/test split sizes and helpers shared by the sources."""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from faceswaplab.data.datasets.base import FaceSource

SPLITS = ("train", "val", "test")


def split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """How many of `n` items (samples or groups) go to train, val and test.

    Every split with a non-zero fraction gets at least one item when there are enough (test is served before
    val, as the benchmark needs it most); train gets the rest.
    """
    f = np.asarray(fractions, np.float64)
    if f.shape != (3,) or (f < 0).any() or f.sum() <= 0:
        raise ValueError(f"split fractions must be three non-negative numbers (train, val, test), got {fractions}")
    f = f / f.sum()
    n_test = int(round(f[2] * n))
    n_val = int(round(f[1] * n))
    if f[2] > 0 and n_test == 0 and n >= 2:
        n_test = 1
    if f[1] > 0 and n_val == 0 and n >= 3:
        n_val = 1
    # Train keeps at least one item when its fraction is positive.
    while f[0] > 0 and n - n_val - n_test < 1 and (n_val or n_test):
        if n_val:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def _name_seed(seed: int, name: str) -> list[int]:
    # A stable per-identity stream (Python's hash() is salted per process).
    return [int(seed), zlib.crc32(name.encode())]


def describe(sources: Sequence[FaceSource], splits: dict[str, dict[str, list]]) -> str:
    """One line per identity with its split sizes."""
    lines = []
    for src in sources:
        sp = splits[src.name]
        lines.append(f"{src.name}: " + ", ".join(f"{s} {len(sp[s])}" for s in SPLITS))
    return "\n".join(lines)
