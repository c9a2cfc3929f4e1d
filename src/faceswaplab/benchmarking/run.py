"""Running a benchmark: every row swaps the same pairs, and the same metrics score the outputs."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from faceswaplab.benchmarking.pairs import data_module, detect, pairs_record, read_pairs, subset
from faceswaplab.benchmarking.report import log_to_wandb, write_results
from faceswaplab.benchmarking.rows import Row, resolve_rows
from faceswaplab.benchmarking.stats import bootstrap_interval
from faceswaplab.callbacks import peak_memory_mb

log = logging.getLogger("faceswaplab.benchmark")


def run_benchmark(cfg: DictConfig) -> dict[str, Any]:
    """Run the benchmark of a composed ``conf/benchmark.yaml`` config; writes the result files into
    ``cfg.out_dir`` and returns ``{"results": [row dict per method], "unavailable": {metric: reason},
    "files": {name: path}}``."""
    from faceswaplab.data.datamodule import SampleRef
    from faceswaplab.metrics import build_metrics, identity_gallery

    if cfg.reference_landmarks not in ("ground_truth", "detect"):
        raise ValueError(f"reference_landmarks must be ground_truth or detect, got {cfg.reference_landmarks!r}")
    out_dir = Path(cfg.out_dir)
    device = torch.device(cfg.device)
    entries = resolve_rows(cfg)  # trains what needs training first
    torch.manual_seed(int(cfg.seed))
    dm, data_cfg = data_module(cfg, entries)
    size = int(data_cfg.image_size)

    # Pairs: (source, target) refs of the test split; direction names the target's side then the source's.
    if cfg.get("pairs_file"):
        pairs = read_pairs(cfg.pairs_file, dm)
    else:
        pairs = dm.test_pairs(int(cfg.num_pairs), seed=int(cfg.seed))
    source = dm.load([s for s, _ in pairs])
    target = dm.load([t for _, t in pairs])
    sides = "AB"
    directions = [f"{sides[t.identity]}to{sides[s.identity]}" for s, t in pairs]

    rows = {name: Row(name, entry, data_cfg, device) for name, entry in entries.items()}
    metrics_all, unavailable = build_metrics(list(cfg.metrics), "cpu", embedder=cfg.embedder, image_size=size)
    embedder = next((m.embedder for m in metrics_all.values() if hasattr(m, "embedder")), None)

    # Gallery: per-identity mean embedding of test images (seeded choice).
    gallery = None
    if embedder is not None and "identity_retrieval" in metrics_all:
        rng = np.random.default_rng([int(cfg.seed), 11])
        imgs, lms, ids = [], [], []
        test = dm.dataset("test")
        for k, part in enumerate((test.a, test.b)):
            pick = rng.permutation(len(part))[: int(cfg.gallery_per_identity)]
            b = dm.load([SampleRef(k, int(i)) for i in pick])
            imgs.append(b["image"]), lms.append(b["landmarks"]), ids.append(b["identity"])
        gallery = identity_gallery(embedder.embed(torch.cat(imgs), torch.cat(lms)), torch.cat(ids))

    target_lm = target["landmarks"].double()
    results, outputs_for_grid = [], {}
    boot = cfg.bootstrap
    for row_i, (name, row) in enumerate(rows.items()):
        metrics, _ = build_metrics(list(metrics_all), "cpu", embedder=embedder, image_size=size)
        if gallery is not None and "identity_retrieval" in metrics:
            metrics["identity_retrieval"].set_gallery(*gallery)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        bs = int(cfg.batch_size)
        chunks = [list(range(i, min(i + bs, len(pairs)))) for i in range(0, len(pairs), bs)]
        row.swap({"source": subset(source, chunks[0][:1]), "target": subset(target, chunks[0][:1])},
                 directions[:1])  # warm-up
        outs, elapsed = [], 0.0
        for ch in chunks:
            b = {"source": subset(source, ch), "target": subset(target, ch)}
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            outs.append(row.swap(b, [directions[i] for i in ch]))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed += time.perf_counter() - t0
        output = torch.cat(outs)  # (N, 3, H, W)
        outputs_for_grid[name] = output
        speed = {"latency_ms": 1000 * elapsed / len(pairs), "peak_memory_mb": peak_memory_mb(device),
                 "train_images_per_sec": row.train_throughput()}

        # Landmarks of the output: known for the reference rows (ground_truth mode), detected otherwise.
        if row.reference is not None and cfg.reference_landmarks == "ground_truth":
            out_lm = (target if row.reference == "target" else source)["landmarks"].double()
        elif any(n in metrics for n in ("landmark_nme", "pose_error", "expression_error")):
            out_lm = detect(output, int(cfg.detect_size))
        else:
            out_lm = None
        # Geometry for the embedder: the source row shows the source's face, every other row the target's.
        embed_lm = source["landmarks"] if row.reference == "source" else target["landmarks"]

        for mname, m in metrics.items():
            if mname == "identity_similarity":
                m.update(output, source["image"], output_landmarks=embed_lm, source_landmarks=source["landmarks"])
            elif mname == "identity_retrieval":
                m.update(output, source["identity"], output_landmarks=embed_lm)
            elif mname == "landmark_nme":
                m.update(target_lm, output_landmarks=out_lm)
            elif mname == "pose_error":
                m.update(target_lm, output_landmarks=out_lm)
            elif mname == "expression_error":
                m.update(target_lm, output_landmarks=out_lm)
            elif mname == "background_lpips":
                m.update(output, target["image"], mask=target["mask"])
            elif mname in ("lpips", "ssim", "psnr"):
                m.update(output, target["image"])
            elif mname in ("fid", "kid"):
                m.update(target["image"], real=True)
                m.update(output, real=False)

        values: dict[str, Any] = {}
        for j, (mname, m) in enumerate(metrics.items()):
            if hasattr(m, "per_sample"):
                per = m.per_sample().numpy()
                mean, lo, hi, n = bootstrap_interval(per, int(boot.resamples), float(boot.confidence),
                                                     seed=int(cfg.seed) * 1000 + j)
                values[mname] = {"mean": mean, "lo": lo, "hi": hi, "n": n, "failed": int(np.isnan(per).sum())}
            else:  # set-level metrics (FID, KID): one value, no interval
                v = m.compute()
                v = v[0] if isinstance(v, tuple) else v
                values[mname] = {"mean": float(v), "lo": math.nan, "hi": math.nan, "n": len(pairs), "failed": 0}
        results.append({**row.describe(), "method": name, "metrics": values, "speed": speed})
        log.info("%s: %s", name, {k: round(v["mean"], 4) for k, v in values.items()})

    files = write_results(out_dir, cfg, data_cfg, results, unavailable, pairs_record(pairs, dm), directions, embedder,
                   source, target, outputs_for_grid)
    if cfg.get("wandb") and cfg.wandb.get("enabled"):
        files["wandb"] = log_to_wandb(cfg, results, files, dm.identity_names)
    return {"results": results, "unavailable": unavailable, "files": files}
