"""The benchmark's figures: ``metrics.png`` and ``identity_vs_attributes.png``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from faceswaplab.io import atomic_path


# Metric -> (axis label, higher is better); metrics not listed are plotted with their own name.
PLOT_LABELS = {
    "identity_similarity": ("identity similarity (cosine)", True),
    "identity_retrieval": ("identity retrieval top-1", True),
    "landmark_nme": ("landmark NME", False),
    "pose_error": ("head-pose error (deg)", False),
    "expression_error": ("expression error", False),
    "background_lpips": ("background LPIPS", False),
    "lpips": ("LPIPS to target", False),
    "ssim": ("SSIM", True),
    "psnr": ("PSNR (dB)", True),
    "fid": ("FID", False),
    "kid": ("KID", False),
}


def plot_results(results: list[dict], names: list[str], out_dir: Path, confidence: int = 95) -> list[str]:
    """Write ``metrics.png`` (bars with bootstrap intervals, one panel per metric) and, when both metrics were
    computed, ``identity_vs_attributes.png`` (identity similarity against pose error); returns the file names."""
    from matplotlib.figure import Figure  # not pyplot: no backend switch, no global figure state

    methods = [r["method"] for r in results]
    shown = [m for m in names if any(math.isfinite(r["metrics"][m]["mean"]) for r in results)]
    written = []
    if shown:
        cols = min(3, len(shown))
        rows = -(-len(shown) // cols)
        fig = Figure(figsize=(4.2 * cols, 0.35 * len(methods) * rows + 1.2 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        y = np.arange(len(methods))
        for ax, m in zip(axes.flat, shown):
            v = [r["metrics"][m] for r in results]
            mean = np.array([x["mean"] for x in v])
            err = np.array([[x["mean"] - x["lo"], x["hi"] - x["mean"]] for x in v]).T
            err = np.where(np.isfinite(err), err, 0)
            ax.barh(y, np.nan_to_num(mean), xerr=err, color="tab:blue", ecolor="black", capsize=3)
            # The outputs a metric could not score stay visible: "name (k failed)" on the axis.
            ax.set_yticks(y, [f"{n} ({x['failed']} failed)" if x.get("failed") else n for n, x in zip(methods, v)])
            ax.invert_yaxis()
            label, higher = PLOT_LABELS.get(m, (m, True))
            ax.set_title(f"{label} ({'higher' if higher else 'lower'} is better)", fontsize=9)
            ax.tick_params(labelsize=8)
        for ax in list(axes.flat)[len(shown):]:
            ax.axis("off")
        fig.suptitle(f"mean and {confidence}% bootstrap interval per method", fontsize=10)
        fig.tight_layout()
        _save_figure(fig, out_dir / "metrics.png")
        written.append("metrics.png")

    x_name, y_name = "pose_error", "identity_similarity"
    if x_name in shown and y_name in shown:
        fig = Figure(figsize=(5.5, 4.5))
        ax = fig.subplots()
        for r in results:
            xv, yv = r["metrics"][x_name], r["metrics"][y_name]
            if not (math.isfinite(xv["mean"]) and math.isfinite(yv["mean"])):
                continue
            xerr = [[xv["mean"] - xv["lo"]], [xv["hi"] - xv["mean"]]] if math.isfinite(xv["lo"]) else None
            yerr = [[yv["mean"] - yv["lo"]], [yv["hi"] - yv["mean"]]] if math.isfinite(yv["lo"]) else None
            ax.errorbar(xv["mean"], yv["mean"], xerr=xerr, yerr=yerr, fmt="o", capsize=3)
            ax.annotate(r["method"], (xv["mean"], yv["mean"]), textcoords="offset points", xytext=(5, 5),
                        fontsize=8)
        ax.set_xlabel(PLOT_LABELS[x_name][0] + " (lower: attributes kept)")
        ax.set_ylabel(PLOT_LABELS[y_name][0] + " (higher: identity moved)")
        ax.set_title("identity transfer against attribute preservation", fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        _save_figure(fig, out_dir / "identity_vs_attributes.png")
        written.append("identity_vs_attributes.png")
    return written


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
