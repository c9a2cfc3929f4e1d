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
from tqdm import tqdm

from faceswaplab.benchmarking.budget import budget_curves, write_budget
from faceswaplab.benchmarking.fairness import breakdown, target_groups, write_fairness
from faceswaplab.benchmarking.pairs import (data_module, gallery_images, other_source_refs, pairs_record,
                                            read_pairs, source_shot_refs, subset)
from faceswaplab.benchmarking.report import log_to_wandb, write_results
from faceswaplab.benchmarking.rows import Row, resolve_rows
from faceswaplab.benchmarking.significance import paired_tests
from faceswaplab.benchmarking.stats import bootstrap_interval
from faceswaplab.callbacks import peak_memory_mb

log = logging.getLogger("faceswaplab.benchmark")


def run_benchmark(cfg: DictConfig) -> dict[str, Any]:
    """Run the benchmark of a composed ``conf/benchmark.yaml`` config; writes the result files into
    ``cfg.out_dir`` and returns ``{"results": [row dict per method], "unavailable": {metric: reason},
    "files": {name: path}, "significance": [paired tests], "calibration": {...}}``."""
    from faceswaplab.metrics import build_metrics, identity_gallery, predict_landmarks

    out_dir = Path(cfg.out_dir)
    device = torch.device(cfg.device)
    entries = resolve_rows(cfg)  # trains what needs training first
    dm, data_cfg = data_module(cfg, entries)
    size, seed = int(data_cfg.image_size), int(cfg.seed)

    # Pairs: (source, target) refs of the test split; direction names the target's side then the source's.
    pairs = read_pairs(cfg.pairs_file, dm) if cfg.get("pairs_file") else dm.test_pairs(int(cfg.num_pairs), seed=seed)
    source = dm.load([s for s, _ in pairs])
    target = dm.load([t for _, t in pairs])
    other = dm.load(other_source_refs(dm, pairs, seed))
    # K-shot rows (swap: {shots: K}) embed the pair's source and K - 1 more test photos of its identity.
    shots = max([int((e.get("swap") or {}).get("shots", 1)) for e in entries.values()] + [1])
    shot_refs = source_shot_refs(dm, pairs, shots, seed) if shots > 1 else []
    more = {k: v.view(len(pairs), shots - 1, *v.shape[1:]) for k, v in dm.load(shot_refs).items()
            if k in ("image", "landmarks")} if shot_refs else {}
    sides = "AB"
    directions = [f"{sides[t.identity]}to{sides[s.identity]}" for s, t in pairs]
    n = len(pairs)

    rows = {name: Row(name, entry, data_cfg, device) for name, entry in entries.items()}
    names = list(cfg.metrics)
    metrics_all, unavailable = build_metrics(names, "cpu", embedder=cfg.embedder, image_size=size)
    embedder = next((m.embedder for m in metrics_all.values() if hasattr(m, "embedder")), None)

    # Landmarks every row's outputs are measured with: the shape predictor inside the aligned crop's known face box,
    # so every output has them; the references' images take exactly the same path.
    predict = lambda images: predict_landmarks(images, int(cfg.detect_size))  # noqa: E731
    source_lm, target_lm = predict(source["image"]), predict(target["image"])

    calibration: dict[str, Any] = {"pairs": n}
    gallery = threshold = None
    if embedder is not None:
        g, gallery_names = gallery_images(dm, cfg.gallery, seed)
        g_emb = embedder.embed(g["image"], predict(g["image"]))
        gallery = identity_gallery(g_emb, g["identity"])
        calibration["gallery_identities"] = len(gallery_names)
        calibration["gallery_images"] = len(g_emb)
        for mname in ("identity_retrieval", "identity_retrieval_top5"):
            if mname in metrics_all:
                calibration[f"{mname}_chance"] = min(metrics_all[mname].k, len(gallery_names)) / len(gallery_names)
        if "identity_match" in metrics_all:
            threshold, how = _match_threshold(cfg.match_threshold, embedder, g_emb, g["identity"])
            calibration.update(match_threshold=threshold, match_threshold_from=how)

    scorer = RowScorer(cfg, metrics_all, embedder, gallery, threshold, predict,
                       dict(source=source, target=target, other=other, more=more, directions=directions,
                            source_lm=source_lm, target_lm=target_lm), device)
    results, outputs, per_sample = [], {}, {}
    progress = tqdm(rows.items(), total=len(rows), unit="row", desc="benchmark", disable=not cfg.get("progress", True),
                    dynamic_ncols=True)
    for name, row in progress:
        progress.set_postfix_str(name)
        values, per_sample[name], outputs[name], speed = scorer(row)
        results.append({**row.describe(), "method": name, "metrics": values, "speed": speed})
        log.info("%s: %s", name, {k: round(v["mean"], 4) for k, v in values.items()})

    tests = paired_tests(per_sample, float(cfg.significance.alpha))
    files = write_results(out_dir, cfg, data_cfg, results, unavailable, pairs_record(pairs, dm), directions, embedder,
                          source, target, outputs, calibration, tests)
    groups = target_groups(target["image"], target_lm)
    min_group = int(cfg.get("fairness", {}).get("min_group", 5))
    cells, gaps = breakdown(per_sample, groups, int(cfg.bootstrap.resamples), float(cfg.bootstrap.confidence), seed,
                            min_group)
    files.update(write_fairness(out_dir, cells, gaps, groups, min_group))
    budget = cfg.get("budget") or {}
    if budget.get("enabled"):
        files.update(write_budget(out_dir, budget_curves(rows, results, scorer, int(budget.get("every", 1))),
                                  results))
    if cfg.get("wandb") and cfg.wandb.get("enabled"):
        files["wandb"] = log_to_wandb(cfg, results, files, dm.identity_names)
    return {"results": results, "unavailable": unavailable, "files": files, "significance": tests,
            "calibration": calibration, "fairness": {"groups": groups, "cells": cells, "gaps": gaps}}


class RowScorer:
    """Swaps every pair with one row and scores the outputs with every metric: the path every row takes, the
    references' and the budget curves' checkpoints alike. Calling it on a :class:`Row` returns
    ``(values {metric: {mean, lo, hi, n, failed}}, per-sample {metric: array}, outputs (N, 3, H, W), speed)``."""

    def __init__(self, cfg, metrics_all, embedder, gallery, threshold, predict, data: dict, device):
        self.cfg, self.names, self.embedder = cfg, list(metrics_all), embedder
        self.gallery, self.threshold, self.predict, self.data, self.device = gallery, threshold, predict, data, device

    def __call__(self, row):
        from faceswaplab.metrics import build_metrics

        cfg, d, seed = self.cfg, self.data, int(self.cfg.seed)
        size = int(d["target"]["image"].shape[-1])
        metrics, _ = build_metrics(self.names, "cpu", embedder=self.embedder, image_size=size)
        for mname in ("identity_retrieval", "identity_retrieval_top5"):
            if mname in metrics:
                metrics[mname].set_gallery(*self.gallery)
        if "identity_match" in metrics:
            metrics["identity_match"].threshold = self.threshold
        output, speed = _swap_all(row, d["source"], d["target"], d["other"], d["more"], d["directions"],
                                  int(cfg.batch_size), self.device, seed)
        speed["train_images_per_sec"] = row.train_throughput()
        out_lm = self.predict(output)
        for mname, m in metrics.items():
            _update(mname, m, output, out_lm, d["source"], d["source_lm"], d["target"], d["target_lm"])
        values: dict[str, Any] = {}
        per_sample = {}
        for k, (mname, m) in enumerate(metrics.items()):
            if hasattr(m, "per_sample"):
                per = m.per_sample().numpy()
                per_sample[mname] = per
                mean, lo, hi, count = bootstrap_interval(per, int(cfg.bootstrap.resamples),
                                                         float(cfg.bootstrap.confidence), seed=seed * 1000 + k)
                values[mname] = {"mean": mean, "lo": lo, "hi": hi, "n": count, "failed": int(np.isnan(per).sum())}
            else:  # set-level metrics (FID, KID, identity_fd): one value, no interval
                v = m.compute()
                v = v[0] if isinstance(v, tuple) else v
                values[mname] = {"mean": float(v), "lo": math.nan, "hi": math.nan, "n": len(output), "failed": 0}
        return values, per_sample, output, speed


def _swap_all(row, source, target, other, more, directions, batch_size, device, seed):
    """All outputs of a row (N, 3, H, W), one warm-up batch first, with latency and peak memory. `more`: the
    sources' further shots (image (N, K - 1, 3, H, W), landmarks) for K-shot rows, or {}."""
    n = len(directions)
    chunks = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    halves = lambda idx: {"source": subset(source, idx), "target": subset(target, idx),  # noqa: E731
                          "source_other": subset(other, idx), "source_shots": subset(more, idx)}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row.swap(halves(chunks[0][:1]), directions[:1])  # warm-up
    torch.manual_seed(seed)  # methods that sample in swap (pix2pix's dropout) give the same outputs every run
    outs, elapsed = [], 0.0
    for ch in chunks:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        outs.append(row.swap(halves(ch), [directions[i] for i in ch]))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed += time.perf_counter() - t0
    return torch.cat(outs), {"latency_ms": 1000 * elapsed / n, "peak_memory_mb": peak_memory_mb(device)}


def _update(name, m, output, out_lm, source, source_lm, target, target_lm) -> None:
    """Feed one metric the row's outputs with what it compares them to."""
    if name in ("identity_similarity", "identity_match"):
        m.update(output, source["image"], output_landmarks=out_lm, source_landmarks=source_lm)
    elif name in ("identity_retrieval", "identity_retrieval_top5"):
        m.update(output, source["identity"], output_landmarks=out_lm)
    elif name == "face_detected":
        m.update(output)
    elif name in ("landmark_nme", "pose_error", "expression_error"):
        m.update(target["landmarks"].double(), output_landmarks=out_lm)
    elif name in ("pose_error_source", "expression_error_source"):
        m.update(source["landmarks"].double(), output_landmarks=out_lm)
    elif name == "background_lpips":
        m.update(output, target["image"], mask=target["mask"])
    elif name in ("lpips", "ssim", "psnr"):
        m.update(output, target["image"])
    elif name == "identity_fd":
        m.update(target["image"], real=True, landmarks=target_lm)
        m.update(output, real=False, landmarks=out_lm)
    elif name in ("fid", "kid"):
        m.update(target["image"], real=True)
        m.update(output, real=False)
    else:
        raise ValueError(f"the benchmark does not know how to feed metric {name!r}")


def _match_threshold(setting, embedder, embeddings, identities) -> tuple[float, str]:
    """The verification threshold (cosine) of identity_match and where it comes from."""
    from faceswaplab.metrics import equal_error_threshold

    if setting not in (None, "auto"):
        return float(setting), "config"
    own = getattr(embedder, "match_threshold", None)
    if own is not None:
        return float(own), f"{embedder.name} embedder's operating threshold"
    t, eer = equal_error_threshold(embeddings, identities)
    return t, f"equal-error threshold on the gallery images (EER {eer:.3f})"
