"""The base of the metrics that keep one value per sample (so that the runner can bootstrap intervals)."""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class PerSampleMetric(Metric):
    """Accumulates per-sample values in a ``cat`` state; `compute` is their mean over samples that are not NaN.

    NaN marks a sample the metric could not evaluate (e.g. no face detected in the output); `num_failed` counts
    them. `per_sample()` returns every value (N,), NaN included, in update order.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def _add(self, values: torch.Tensor) -> torch.Tensor:
        v = values.detach().double().reshape(-1).to(self.device)
        self.values.append(v)
        return v

    def per_sample(self) -> torch.Tensor:
        """All per-sample values so far, (N,) float64; NaN where a sample failed."""
        if isinstance(self.values, torch.Tensor):  # after a distributed sync
            return self.values
        return dim_zero_cat(self.values) if len(self.values) else torch.zeros(0, dtype=torch.float64)

    def num_failed(self) -> int:
        """How many samples could not be evaluated (NaN)."""
        return int(torch.isnan(self.per_sample()).sum())

    def compute(self) -> torch.Tensor:
        v = self.per_sample()
        v = v[~torch.isnan(v)]
        return v.mean() if len(v) else torch.tensor(math.nan, dtype=torch.float64)
