"""Budget curves: each trained row scored at several points of its training, so families compare at equal compute.

Every periodic checkpoint of a trained row (``checkpoints/epochNNNN.ckpt``, conf/train.yaml's
``periodic_checkpoint``), and its final one, swaps the benchmark's pairs and is scored by
:class:`~faceswaplab.benchmarking.run.RowScorer`, the path of every row. The budget spent up to a checkpoint is read
from the run's ``metrics.jsonl``: ``perf/images_seen`` (face images through training steps) and ``perf/wall_s``
(seconds since training started) of the validation record of that epoch.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from pathlib import Path

import numpy as np

from faceswaplab.benchmarking.plots import PLOT_LABELS, _save_figure
from faceswaplab.io import write_text

log = logging.getLogger("faceswaplab.benchmark")

PERIODIC = re.compile(r"epoch(\d+)\.ckpt$")
FIELDS = ["method", "checkpoint", "epoch", "step", "images_seen", "wall_s", "metric", "mean", "lo", "hi", "n",
          "failed"]


def budget_points(run, every: int = 1) -> list[dict]:
    """The scored points of a run's training, oldest first: every `every`-th periodic checkpoint, then
    ``last.ckpt``; each ``{checkpoint, epoch, step, images_seen, wall_s}`` (NaN where ``metrics.jsonl`` has no
    record of that epoch or a run predates the budget counters)."""
    records = [r for r in run.metrics if r.get("stage") == "validate"]
    periodic = sorted((int(m.group(1)), p) for p in run.checkpoint_dir.glob("epoch*.ckpt")
                      if (m := PERIODIC.search(p.name)))
    periodic = periodic[every - 1 :: every] if every > 1 else periodic
    last_epoch = max((r["epoch"] for r in records), default=None)
    points = [(e, p) for e, p in periodic if e != last_epoch] + [(last_epoch, run.last_checkpoint)]
    out = []
    for epoch, ckpt in points:
        rec = next((r for r in reversed(records) if r.get("epoch") == epoch), {})
        out.append({"checkpoint": str(ckpt), "epoch": epoch, "step": rec.get("step"),
                    "images_seen": float(rec.get("perf/images_seen", math.nan)),
                    "wall_s": float(rec.get("perf/wall_s", math.nan))})
    if any(math.isnan(p["images_seen"]) for p in out):
        log.warning("%s: metrics.jsonl has no perf/images_seen for some checkpoints (a run trained before the "
                    "budget counters, or without validation): their budget is left blank", run.path)
    return out


def budget_curves(rows: dict, results: list[dict], scorer, every: int = 1) -> list[dict]:
    """One record per (trained row, training point, metric) as in ``budget.csv``; the final point reuses the row's
    benchmark result (same checkpoint, same scoring)."""
    from faceswaplab.benchmarking.rows import Row

    final = {r["method"]: r["metrics"] for r in results}
    records = []
    for name, row in rows.items():
        if row.run is None:
            continue
        for point in budget_points(row.run, every):
            if point["checkpoint"] == str(row.checkpoint):
                values = final[name]
            else:
                log.info("budget: %s at epoch %s", name, point["epoch"])
                values = scorer(Row(name, row.entry, None, row.device, checkpoint=point["checkpoint"]))[0]
            for metric, v in values.items():
                records.append({"method": name, **point, "metric": metric,
                                **{k: v[k] for k in ("mean", "lo", "hi", "n", "failed")}})
    return records


def write_budget(out_dir: Path, records: list[dict], results: list[dict], references=("target", "source_other")
                 ) -> dict[str, str]:
    """``budget.csv`` (every record), ``budget.md`` (per row, the metric means at each point) and ``budget.png``
    (one panel per metric: the mean against images seen, a line per trained row, the references as horizontal
    lines)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(records)
    write_text(out_dir / "budget.csv", buf.getvalue())

    metrics = list(dict.fromkeys(r["metric"] for r in records))
    methods = list(dict.fromkeys(r["method"] for r in records))
    refs = {r["method"]: r["metrics"] for r in results if r["method"] in references}
    lines = ["# Budget curves", "",
             "Each trained row scored at its periodic checkpoints and its final one, on the benchmark's pairs with its "
             "metrics. images seen: face images through training steps; wall: seconds since training started.", ""]
    head = ["epoch", "images seen", "wall s", *metrics]
    for m in methods:
        lines += [f"## {m}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        points = {}
        for r in (r for r in records if r["method"] == m):
            points.setdefault(r["checkpoint"], {"epoch": r["epoch"], "images_seen": r["images_seen"],
                                                "wall_s": r["wall_s"]})[r["metric"]] = r["mean"]
        for p in points.values():
            lines.append(f"| {p['epoch']} | {_num(p['images_seen'], 0)} | {_num(p['wall_s'], 1)} | "
                         + " | ".join(_num(p.get(k, math.nan), 4) for k in metrics) + " |")
        lines.append("")
    if refs:
        lines += ["References (horizontal lines in budget.png):", "", "| row | " + " | ".join(metrics) + " |",
                  "|" + "---|" * (len(metrics) + 1)]
        lines += [f"| {name} | " + " | ".join(_num(v.get(k, {}).get("mean", math.nan), 4) for k in metrics) + " |"
                  for name, v in refs.items()]
    write_text(out_dir / "budget.md", "\n".join(lines) + "\n")
    _plot(out_dir / "budget.png", records, metrics, methods, refs)
    return {name: str(out_dir / name) for name in ("budget.csv", "budget.md", "budget.png")}


def _num(x, digits: int) -> str:
    return "—" if x is None or not math.isfinite(float(x)) else f"{float(x):.{digits}f}"


def _plot(path: Path, records, metrics, methods, refs) -> None:
    from matplotlib.figure import Figure

    cols = min(3, len(metrics)) or 1
    rows = max(1, -(-len(metrics) // cols))
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for k, m in enumerate(methods):
            pts = sorted((r["images_seen"], r["mean"], r["lo"], r["hi"]) for r in records
                         if r["method"] == m and r["metric"] == metric and math.isfinite(r["images_seen"]))
            if pts:
                x, y, lo, hi = map(np.array, zip(*pts))
                ax.plot(x, y, "o-", color=f"C{k}", label=m)
                ok = np.isfinite(lo) & np.isfinite(hi)
                if ok.any():
                    ax.fill_between(x[ok], lo[ok], hi[ok], color=f"C{k}", alpha=0.15)
        for j, (name, v) in enumerate(refs.items()):
            mean = v.get(metric, {}).get("mean", math.nan)
            if math.isfinite(mean):
                ax.axhline(mean, color="gray", linestyle=("--", ":", "-.")[j % 3], linewidth=1, label=name)
        label, higher = PLOT_LABELS.get(metric, (metric, None))
        ax.set_title(label if higher is None else f"{label} ({'higher' if higher else 'lower'} is better)", fontsize=9)
        ax.set_xlabel("images seen", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if metrics:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)
