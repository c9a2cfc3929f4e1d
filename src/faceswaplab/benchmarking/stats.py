"""Statistics of per-sample metric values."""

from __future__ import annotations

import math

import numpy as np


def bootstrap_interval(values, resamples: int = 1000, confidence: float = 0.95, seed: int = 0):
    """Mean of the finite `values` and its percentile-bootstrap interval: ``(mean, lo, hi, n)``.

    NaN values (failed samples) are left out; with none left everything is NaN and n is 0.

    >>> mean, lo, hi, n = bootstrap_interval([0.2, 0.4, float("nan"), 0.6], resamples=200, seed=0)
    >>> round(mean, 3), n, lo <= mean <= hi
    (0.4, 3, True)
    """
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan, 0
    rng = np.random.default_rng(int(seed))
    means = v[rng.integers(0, len(v), (int(resamples), len(v)))].mean(1)
    alpha = (1 - float(confidence)) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    # Clamp: with (near-)constant values the quantiles can miss the mean by rounding.
    return float(v.mean()), float(min(lo, v.mean())), float(max(hi, v.mean())), int(len(v))
