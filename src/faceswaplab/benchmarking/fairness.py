"""Every metric broken down by the target's skin tone and head pose: whether a method works equally for everyone.

The pairs are grouped by their target (the face being replaced): skin tone by the individual typology angle of its
skin (:mod:`faceswaplab.metrics.skin_tone`, Del Bino and Bernerd's six groups), head pose by the absolute yaw of its
landmarks (frontal < 15 deg <= three-quarter < 30 deg <= profile). Each (row, metric, group) gets the mean with its
bootstrap interval over that group's pairs; each (row, metric, axis) the largest gap between two group means. Groups
with fewer than ``min_group`` pairs are reported but left out of the gap (their means are too noisy to compare).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import torch

from faceswaplab.benchmarking.stats import bootstrap_interval
from faceswaplab.io import write_text
from faceswaplab.metrics.attributes import head_pose
from faceswaplab.metrics.skin_tone import ITA_GROUPS, individual_typology_angle, ita_group

POSE_BINS = (("frontal", 15.0), ("three-quarter", 30.0), ("profile", math.inf))  # |yaw| below the bound


def pose_group(yaw: float) -> str:
    """The head-pose group of a yaw angle in degrees.

    >>> [pose_group(y) for y in (3.0, -20.0, 45.0, float("nan"))]
    ['frontal', 'three-quarter', 'profile', 'unknown']
    """
    if not math.isfinite(yaw):
        return "unknown"
    return next(name for name, bound in POSE_BINS if abs(yaw) < bound)


def target_groups(images: torch.Tensor, landmarks: torch.Tensor) -> dict[str, list[str]]:
    """``{"skin_tone": [...], "head_pose": [...]}``: the group of each target (images (N, 3, H, W) in [-1, 1],
    landmarks (N, 68, 2)); also ``"ita"`` and ``"yaw"``, the values they were binned from."""
    ita = individual_typology_angle(images, landmarks).tolist()
    yaw = head_pose(landmarks, tuple(images.shape[-2:]))[:, 0].tolist()
    return {"skin_tone": [ita_group(a) for a in ita], "head_pose": [pose_group(y) for y in yaw],
            "ita": ita, "yaw": yaw}


def breakdown(per_sample: dict[str, dict[str, np.ndarray]], groups: dict[str, list[str]], resamples: int = 1000,
              confidence: float = 0.95, seed: int = 0, min_group: int = 5) -> tuple[list[dict], list[dict]]:
    """Per-group statistics and the largest gaps.

    `per_sample`: row -> metric -> (N,) values (NaN: not scored); `groups`: axis -> (N,) group names. Returns
    ``(cells, gaps)``: a cell per (axis, group, row, metric) with mean, lo, hi, n (scored) and failed; a gap per
    (axis, row, metric) with the largest difference of two group means among groups of at least `min_group` pairs
    (NaN when fewer than two such groups) and which groups those were.
    """
    cells, gaps = [], []
    for axis in ("skin_tone", "head_pose"):
        labels = np.asarray(groups[axis])
        order = [g for g in _order(axis) if (labels == g).any()]
        for row, metrics in per_sample.items():
            for k, (metric, values) in enumerate(metrics.items()):
                values = np.asarray(values, np.float64)
                means = {}
                for group in order:
                    v = values[labels == group]
                    mean, lo, hi, n = bootstrap_interval(v, resamples, confidence, seed=seed * 1000 + k)
                    cells.append({"axis": axis, "group": group, "row": row, "metric": metric, "mean": mean,
                                  "lo": lo, "hi": hi, "n": n, "failed": int(np.isnan(v).sum()), "pairs": len(v)})
                    if len(v) >= min_group and n:
                        means[group] = mean
                gap = {"axis": axis, "row": row, "metric": metric, "gap": math.nan, "high": "", "low": ""}
                if len(means) >= 2:
                    high, low = max(means, key=means.get), min(means, key=means.get)
                    gap["gap"] = means[high] - means[low]
                    if gap["gap"] > 0:  # which groups, when they differ at all
                        gap.update(high=high, low=low)
                gaps.append(gap)
    return cells, gaps


def _order(axis: str) -> list[str]:
    names = [n for n, _ in ITA_GROUPS] if axis == "skin_tone" else [n for n, _ in POSE_BINS]
    return names + ["unknown"]


def write_fairness(out_dir: Path, cells: list[dict], gaps: list[dict], groups: dict[str, list[str]],
                   min_group: int) -> dict[str, str]:
    """``fairness.csv`` (every cell) and ``fairness.md`` (group sizes, then per axis a table of each row's metric
    means per group and the largest gap); returns their paths."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(cells[0]) if cells else ["axis"], lineterminator="\n")
    w.writeheader()
    w.writerows(cells)
    write_text(out_dir / "fairness.csv", buf.getvalue())

    lines = ["# Fairness: every metric by the target's skin tone and head pose", "",
             "Pairs are grouped by their target: skin tone by the individual typology angle (ITA) of its skin pixels "
             "(Del Bino and Bernerd's groups), head pose by |yaw| (frontal < 15 deg, three-quarter < 30 deg, "
             "profile). Cells: mean [bootstrap interval] (n scored). Gap: the largest difference between two group "
             f"means among groups of at least {min_group} pairs.", ""]
    for axis in ("skin_tone", "head_pose"):
        labels = groups[axis]
        present = [g for g in _order(axis) if g in labels]
        sizes = ", ".join(f"{g} {labels.count(g)}" for g in present)
        lines += [f"## {axis.replace('_', ' ')} (pairs per group: {sizes})", "",
                  "| row | metric | " + " | ".join(present) + " | largest gap |", "|---" * (len(present) + 3) + "|"]
        by_cell = {(c["row"], c["metric"], c["group"]): c for c in cells if c["axis"] == axis}
        for gap in (g for g in gaps if g["axis"] == axis):
            row, metric = gap["row"], gap["metric"]
            shown = [_cell(by_cell[(row, metric, g)]) for g in present]
            largest = "-" if not math.isfinite(gap["gap"]) else f"{gap['gap']:.3f}" + (
                f" ({gap['high']} - {gap['low']})" if gap["high"] else "")
            lines.append(f"| {row} | {metric} | " + " | ".join(shown) + f" | {largest} |")
        lines.append("")
    write_text(out_dir / "fairness.md", "\n".join(lines))
    return {"fairness.md": str(out_dir / "fairness.md"), "fairness.csv": str(out_dir / "fairness.csv")}


def _cell(c: dict) -> str:
    if not c["n"]:
        return f"- (0 of {c['pairs']})"
    return f"{c['mean']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}] ({c['n']})"
