"""The benchmark's records: ``results.csv``, ``results.md``, ``results.jsonl``, ``pairs.json``, ``samples.png``, and
the optional W&B run."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from faceswaplab.benchmarking.plots import plot_results
from faceswaplab.images import label_columns, make_grid
from faceswaplab.io import write_image, write_json, write_text

PER_SAMPLE_KEYS = ("mean", "lo", "hi", "n", "failed")
SPEED_KEYS = ("latency_ms", "peak_memory_mb", "train_images_per_sec")
# Metric -> (reference row read as 0, reference row read as 1) of the normalised table: identity between leaving the
# target (0) and a real photo of the source (1); attributes between the source photo's own pose and expression (0)
# and the target itself, measured through the same landmarks (1).
NORMALISED = {
    **{m: ("target", "source_other") for m in ("identity_similarity", "identity_retrieval",
                                               "identity_retrieval_top5", "identity_match")},
    **{m: ("source", "target") for m in ("landmark_nme", "pose_error", "expression_error")},
}


def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _fmt(v: dict) -> str:
    if not math.isfinite(v["mean"]):
        return "n/a"
    s = f"{v['mean']:.4f}"
    if math.isfinite(v["lo"]):
        s += f" [{v['lo']:.4f}, {v['hi']:.4f}]"
    return s + (f" ({v['failed']} failed)" if v["failed"] else "")


def _weight_files(embedder) -> list[str]:
    files = []
    if getattr(embedder, "name", None) == "synthetic":
        from faceswaplab.metrics.embedders import synthetic_weights_path

        files.append(str(synthetic_weights_path()))
    for attr in ("weights_path", "path", "model_path"):
        p = getattr(embedder, attr, None)
        if p:
            files.append(str(p))
    return files


def normalised(results: list[dict]) -> dict[str, dict[str, float]]:
    """row -> metric -> its mean rescaled between the two reference rows of :data:`NORMALISED` (NaN without them)."""
    means = {r["method"]: {m: v["mean"] for m, v in r["metrics"].items()} for r in results}
    out = {}
    for row, values in means.items():
        out[row] = {}
        for m, (zero, one) in NORMALISED.items():
            if m in values and zero in means and one in means:
                lo, hi = means[zero][m], means[one][m]
                ok = math.isfinite(lo) and math.isfinite(hi) and abs(hi - lo) > 1e-12
                out[row][m] = (values[m] - lo) / (hi - lo) if ok else math.nan
    return out


def _calibration_lines(calibration: dict) -> list[str]:
    lines = []
    if "gallery_identities" in calibration:
        k = calibration["gallery_identities"]
        labels = {"identity_retrieval": "top-1", "identity_retrieval_top5": "top-5"}
        chance = ", ".join(f"{label} {calibration[m + '_chance']:.3f}" for m, label in labels.items()
                           if m + "_chance" in calibration)
        lines.append(f"Identity retrieval against a gallery of {k} identities ({calibration['gallery_images']} "
                     f"images, every pair identity plus distractors); chance {chance}.")
    if "match_threshold" in calibration:
        lines.append(f"identity_match: cosine similarity to the source >= {calibration['match_threshold']:.3f} "
                     f"({calibration['match_threshold_from']}).")
    return lines


def write_results(out_dir: Path, cfg, data_cfg, results, unavailable, pairs, directions, embedder, source, target,
                  outputs, calibration: dict | None = None, tests: list[dict] | None = None) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted({m for r in results for m in r["metrics"]}, key=list(cfg.metrics).index)
    header = ["method"] + [f"{m}_{k}" for m in names for k in PER_SAMPLE_KEYS] + list(SPEED_KEYS)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in results:
        w.writerow([r["method"]] + [r["metrics"][m][k] for m in names for k in PER_SAMPLE_KEYS]
                   + [f"{r['speed'][k]:.3f}" for k in SPEED_KEYS])
    write_text(out_dir / "results.csv", buf.getvalue())

    n_pairs = len(pairs["pairs"])
    conf = int(round(100 * float(cfg.bootstrap.confidence)))
    md = [f"# Benchmark: {n_pairs} test pairs, {data_cfg.image_size} px, seed {cfg.seed}", "",
          f"Mean [{conf}% bootstrap interval] over all {n_pairs} pairs: every output is scored on every metric "
          "(landmarks from dlib's shape predictor inside the aligned crop's face box, the same for every row); "
          "`(k failed)` counts outputs a metric could not evaluate. `face_detected`: share of outputs in which dlib's "
          "detector finds a face at all. Reference rows: `target` (the target unchanged), `source` (the source photo), "
          "`source_other` (another photo of the source identity).", "", *_calibration_lines(calibration or {}), "",
          "| method | " + " | ".join(names) + " | latency (ms/image) | peak memory (MB) | training (images/s) |",
          "|---" * (len(names) + 4) + "|"]
    for r in results:
        sp = r["speed"]
        train_rate = f"{sp['train_images_per_sec']:.1f}" if math.isfinite(sp["train_images_per_sec"]) else "-"
        md.append(f"| {r['method']} | " + " | ".join(_fmt(r["metrics"][m]) for m in names)
                  + f" | {sp['latency_ms']:.2f} | {sp['peak_memory_mb']:.0f} | {train_rate} |")
    norm = normalised(results)
    shown = [m for m in NORMALISED if m in names]
    if shown and any(math.isfinite(v) for r in norm.values() for v in r.values()):
        md += ["", "Normalised between the reference rows (identity: 0 = the target left as it is, 1 = another real "
               "photo of the source; attributes: 0 = the source photo's own pose and expression, 1 = the target "
               "itself):", "", "| method | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
        md += [f"| {row} | " + " | ".join(f"{norm[row].get(m, math.nan):.3f}" for m in shown) + " |" for row in norm]
    if tests:
        from faceswaplab.benchmarking.significance import write_significance

        significant = sum(t["significant"] for t in tests)
        md += ["", f"Paired Wilcoxon signed-rank tests between every two rows on the same pairs, Holm-corrected per "
               f"metric: {significant} of {len(tests)} differences significant at alpha = {cfg.significance.alpha} "
               "(`significance.md`)."]
        write_significance(out_dir, tests)
    if unavailable:
        md += ["", "Unavailable metrics:", ""] + [f"- `{k}`: {v}" for k, v in unavailable.items()]
    write_text(out_dir / "results.md", "\n".join(md) + "\n")

    write_json(out_dir / "pairs.json", pairs)
    common = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "git_commit": git_commit(),
        "seeds": {"benchmark": int(cfg.seed), "data": int(data_cfg.seed)},
        "pairs": [{**p, "direction": d} for p, d in zip(pairs["pairs"], directions)],
        "embedder": getattr(embedder, "name", None),
        "weight_files": _weight_files(embedder) if embedder is not None else [],
        "landmarks": "dlib 68-point shape predictor in the aligned crop's template face box",
        "calibration": calibration or {},
        "normalised": None,
        "unavailable": unavailable,
    }
    lines = [json.dumps({**r, **common, "normalised": norm.get(r["method"], {})}, sort_keys=True, default=str)
             for r in results]
    write_text(out_dir / "results.jsonl", "\n".join(lines) + "\n")

    k = min(int(cfg.sample_rows), n_pairs)
    cols = [source["image"][:k], target["image"][:k]] + [o[:k] for o in outputs.values()]
    grid = torch.stack(cols, 1).flatten(0, 1)  # (k * columns, 3, H, W), row-major
    write_image(out_dir / "samples.png",
                label_columns(make_grid(grid, nrow=len(cols)), ["source", "target", *outputs]))
    files = ["results.csv", "results.md", "results.jsonl", "pairs.json", "samples.png"]
    files += ["significance.md", "significance.csv"] if tests else []
    files += plot_results(results, names, out_dir, conf)
    return {n: str(out_dir / n) for n in files}


def log_to_wandb(cfg: DictConfig, results: list[dict], files: dict[str, str], identities=()) -> str:
    """Log the results table and the images to a W&B run (offline when no API key is configured); returns the
    run's local folder (``wandb sync <folder>`` uploads an offline run)."""
    import wandb

    from faceswaplab.loggers import wandb_offline

    wcfg = cfg.wandb
    offline = wcfg.get("offline")
    if offline is None:
        offline = wandb_offline()
    tags = list(dict.fromkeys([*(wcfg.get("tags") or []), *identities]))
    run = wandb.init(project=wcfg.project, group=wcfg.group, job_type="benchmark", name=wcfg.get("name"),
                     tags=tags, dir=str(cfg.out_dir),
                     mode="offline" if offline else "online", config=OmegaConf.to_container(cfg, resolve=True))
    try:
        names = list(results[0]["metrics"]) if results else []
        columns = ["method"] + [f"{m}{s}" for m in names for s in ("", "_lo", "_hi")] + list(SPEED_KEYS)
        table = wandb.Table(columns=columns)
        for r in results:
            table.add_data(r["method"], *[r["metrics"][m][k] for m in names for k in ("mean", "lo", "hi")],
                           *[r["speed"][k] for k in SPEED_KEYS])
        images = {f"benchmark/{Path(f).stem}": wandb.Image(f) for n, f in files.items() if n.endswith(".png")}
        run.log({"benchmark/results": table, **images})
        for r in results:  # one summary value per method and metric, for dashboards across benchmark runs
            for m in names:
                run.summary[f"{r['method']}/{m}"] = r["metrics"][m]["mean"]
        return str(Path(run.dir).parent)
    finally:
        run.finish()
