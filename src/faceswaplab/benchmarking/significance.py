"""Which differences between rows are real: paired tests on the same pairs, corrected for multiple comparisons.

Every two rows of a benchmark are scored on the same (source, target) pairs, so each metric gives paired samples.
:func:`paired_tests` runs the Wilcoxon signed-rank test on every two rows' per-pair values (pairs where either
row has no value are left out of that test, and counted) and corrects the p-values of each metric with Holm's
step-down method (family-wise error rate at ``alpha``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (same order as given).

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, np.float64)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def wilcoxon_p(a, b) -> tuple[float, int]:
    """``(two-sided p, pairs used)`` of the Wilcoxon signed-rank test of paired values `a` and `b` (pairs with a
    NaN dropped; p = 1 when every difference is zero or no pair is left)."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if not len(d) or np.all(d == 0):
        return 1.0, int(keep.sum())
    return float(wilcoxon(d, zero_method="wilcox").pvalue), int(keep.sum())


def paired_tests(per_sample: dict[str, dict[str, np.ndarray]], alpha: float = 0.05) -> list[dict]:
    """Every two rows, every metric: ``per_sample[row][metric]`` -> rows of ``{metric, a, b, mean_a, mean_b,
    n, p, p_holm, significant}`` (``significant``: Holm-adjusted p < `alpha`)."""
    rows = list(per_sample)
    metrics = sorted({m for r in rows for m in per_sample[r]})
    out = []
    for metric in metrics:
        tests = []
        for a, b in itertools.combinations([r for r in rows if metric in per_sample[r]], 2):
            va, vb = per_sample[a][metric], per_sample[b][metric]
            p, n = wilcoxon_p(va, vb)
            tests.append({"metric": metric, "a": a, "b": b, "mean_a": _mean(va), "mean_b": _mean(vb), "n": n,
                          "p": p})
        for t, adj in zip(tests, holm([t["p"] for t in tests]) if tests else []):
            t["p_holm"] = float(adj)
            t["significant"] = bool(adj < alpha)
        out += tests
    return out


def _mean(v) -> float:
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else math.nan


def write_significance(out_dir, tests: list[dict]) -> None:
    """``significance.csv`` (every test) and ``significance.md`` (a table per metric) into `out_dir`."""
    import csv
    import io
    from pathlib import Path

    from faceswaplab.io import write_text

    keys = ("metric", "a", "b", "mean_a", "mean_b", "n", "p", "p_holm", "significant")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    w.writerows([[t[k] for k in keys] for t in tests])
    write_text(Path(out_dir) / "significance.csv", buf.getvalue())
    md = ["# Paired tests", "", "Wilcoxon signed-rank test of every two rows on the same pairs; p-values Holm-corrected "
          "within each metric. `*`: significant.", ""]
    for metric in dict.fromkeys(t["metric"] for t in tests):
        md += [f"## {metric}", "", "| a | b | mean a | mean b | pairs | p | p (Holm) | |", "|---" * 8 + "|"]
        md += [f"| {t['a']} | {t['b']} | {t['mean_a']:.4f} | {t['mean_b']:.4f} | {t['n']} | {t['p']:.2g} | "
               f"{t['p_holm']:.2g} | {'*' if t['significant'] else ''} |" for t in tests if t["metric"] == metric]
        md.append("")
    write_text(Path(out_dir) / "significance.md", "\n".join(md))
