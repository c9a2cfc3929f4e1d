"""Benchmark: every method swaps the same held-out (source, target) pairs and is scored by the same metrics.

``python -m faceswaplab.benchmark`` (config ``conf/benchmark.yaml``) or :func:`run_benchmark` from Python.

Rows (``methods:``): a method trained by the benchmark itself (``{train: [overrides of conf/train.yaml]}``, on the
benchmark's data, into ``train_dir/<row name>``; a finished training is reused, an interrupted one resumed), a
trained run (``{run: <run dir>}``: its ``checkpoints/last.ckpt``, image size and ``splits.json``), an untrained
method (``{method: landmark_warp}``), and two references: ``target`` (the output is the target unchanged: perfect
attributes, no identity transfer) and ``source`` (the output is the source image: perfect identity, the source's
own pose and expression).

Pairs: ``num_pairs`` pairs of the TEST split of the pair data module, drawn by
:meth:`~faceswaplab.data.FaceDataModule.test_pairs` from ``seed``; they alternate source A onto target B
(direction ``BtoA`` for identity-specific methods) and source B onto target A (``AtoB``). ``pairs_file`` gives a
fixed list instead (``pairs.json`` of an earlier benchmark: identity names and sample ids).

Metrics (:func:`faceswaplab.metrics.build_metrics`):

* identity similarity: output vs source embeddings; retrieval top-1 against a gallery of the per-identity mean
  embeddings of ``gallery_per_identity`` test images of each identity of the pair data. The output is embedded
  with the target's landmarks (a swap keeps the target's geometry); the ``source`` row with the source's.
* landmark NME, pose error and expression error against the target's ground-truth landmarks. The output's
  landmarks are detected (dlib HOG on the crop upscaled to ``detect_size``); undetected faces are failures,
  counted per metric. With ``reference_landmarks=ground_truth`` the reference rows use their images' known
  landmarks, so ``target`` scores exactly 0.
* background LPIPS, LPIPS (output vs target), FID and KID (outputs vs targets) when their weights are available;
  otherwise listed with the reason.

Every per-sample metric is reported as its mean over the evaluated samples and a seeded percentile-bootstrap
interval. Speed: swap latency per image (ms, over all pairs, after one warm-up batch) and peak memory (CUDA
peak allocation, or the process' peak RSS on CPU, which never decreases, so later rows inherit earlier peaks).

Speed also reports the training throughput of trained rows (median ``perf/images_per_sec`` of their
``metrics.jsonl``).

Outputs in ``out_dir``: ``results.csv``, ``results.md``, ``results.jsonl`` (one object per method: numbers,
config, git commit, seeds, embedder and weight files), ``pairs.json``, ``samples.png`` (rows: pairs; columns:
source, target, then each method), ``metrics.png`` (a bar per method and metric with its bootstrap interval) and
``identity_vs_attributes.png`` (identity similarity against pose error, one point per method); with
``wandb.enabled`` also a W&B run holding the results table and these images (offline without an API key).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from faceswaplab.callbacks import peak_memory_mb
from faceswaplab.config import CONFIG_DIR
from faceswaplab.images import label_columns, make_grid
from faceswaplab.io import write_image, write_json, write_text

log = logging.getLogger(__name__)

REFERENCES = ("target", "source")
PER_SAMPLE_KEYS = ("mean", "lo", "hi", "n", "failed")
SPEED_KEYS = ("latency_ms", "peak_memory_mb", "train_images_per_sec")
PAIRS_FORMAT = "faceswaplab-pairs-1"
# Data-module keys a training preset may change without changing which faces the benchmark evaluates.
LOADER_KEYS = ("batch_size", "eval_batch_size", "num_workers", "persistent_workers", "pin_memory")


# ------------------------------------------------------------------------------------------------ helpers


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


def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _detect(images: torch.Tensor, size: int) -> torch.Tensor:
    """Landmarks (B, 68, 2) of `images` in their own pixels, detected on a copy upscaled to `size`."""
    from faceswaplab.metrics import detect_landmarks

    h = images.shape[-1]
    if h >= size:
        return detect_landmarks(images)
    big = F.interpolate(images.float().cpu(), size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    # Pixel centres at integers: x_small = (x_big + 0.5) * h / size - 0.5.
    return (detect_landmarks(big) + 0.5) * (h / size) - 0.5


# ------------------------------------------------------------------------------------------------ methods


class _Row:
    """One benchmark row: how to produce outputs for a batch of pairs."""

    def __init__(self, name: str, entry: dict, data_cfg: DictConfig, device: torch.device):
        self.name, self.entry, self.device = name, dict(entry), device
        self.model, self.reference, self.checkpoint = None, None, None
        kinds = [k for k in ("run", "method", "reference") if entry.get(k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"methods.{name}: give exactly one of train=[overrides], run=<run dir>, "
                             f"method=<conf/method name> or reference=target|source, got {dict(entry)}")
        if "reference" in kinds:
            if entry["reference"] not in REFERENCES:
                raise ValueError(f"methods.{name}.reference must be one of {REFERENCES}, got {entry['reference']!r}")
            self.reference = entry["reference"]
        elif "method" in kinds:
            path = Path(CONFIG_DIR) / "method" / f"{entry['method']}.yaml"
            if not path.is_file():
                raise ValueError(f"methods.{name}.method: no method config {path}")
            method_cfg = OmegaConf.load(path)
            if hydra.utils.get_class(method_cfg._target_).trainable:
                raise ValueError(f"methods.{name}: {entry['method']!r} must be trained first: use "
                                 f"methods.{name}.train=[method={entry['method']}] or methods.{name}.run=<run dir>")
            # The method config may read the data group (e.g. the mask's forehead).
            self.model = hydra.utils.instantiate(OmegaConf.merge({"data": data_cfg}, {"method": method_cfg}).method)
        else:
            from faceswaplab.methods import load_method

            self.checkpoint = Path(entry["run"]).expanduser() / "checkpoints" / "last.ckpt"
            if not self.checkpoint.is_file():
                raise ValueError(f"methods.{name}.run: no checkpoint {self.checkpoint}")
            self.model = load_method(self.checkpoint)
        if self.model is not None:
            self.model = self.model.to(device).eval()

    @torch.no_grad()
    def swap(self, batch: dict, direction: list[str]) -> torch.Tensor:
        """Outputs (B, 3, H, W) for source/target batch halves ``batch["source"]``, ``batch["target"]``."""
        s, t = batch["source"], batch["target"]
        if self.reference is not None:
            return (t if self.reference == "target" else s)["image"].clone()
        out = torch.empty_like(t["image"])
        # Identity-specific methods take the direction per pair; run each direction's pairs together.
        for d in sorted(set(direction)):
            idx = torch.tensor([i for i, x in enumerate(direction) if x == d])
            out[idx] = self.model.swap(
                t["image"][idx].to(self.device), s["image"][idx].to(self.device),
                target_landmarks=t["landmarks"][idx].to(self.device),
                source_landmarks=s["landmarks"][idx].to(self.device), direction=d,
            ).float().cpu().clamp(-1, 1)
        return out

    def describe(self) -> dict:
        kind = "reference" if self.reference else ("method" if not self.checkpoint else
                                                   "train" if self.entry.get("train") else "run")
        return {"kind": kind, **{k: str(v) for k, v in self.entry.items()},
                "class": type(self.model).__qualname__ if self.model is not None else None,
                "checkpoint": str(self.checkpoint) if self.checkpoint else None}

    def train_throughput(self) -> float:
        """Median ``perf/images_per_sec`` logged by the run's validations (NaN without a run or a record)."""
        if self.checkpoint is None:
            return math.nan
        path = self.checkpoint.parent.parent / "metrics.jsonl"
        rates = []
        if path.is_file():
            for line in path.read_text().splitlines():
                rate = json.loads(line).get("perf/images_per_sec") if line.strip() else None
                if rate is not None:
                    rates.append(float(rate))
        return float(np.median(rates)) if rates else math.nan


# ------------------------------------------------------------------------------------------------ training


def train_row(name: str, overrides, cfg: DictConfig) -> Path:
    """Train row `name` (``conf/train.yaml`` with `overrides`, on the benchmark's data) into
    ``cfg.train_dir/name``, or reuse the finished training there; returns the run directory.

    The data module's identities, splits, image size and augmentation come from the benchmark's ``data``; only
    loader settings (batch size, workers) come from the training config, so the held-out pairs are never trained
    on. An interrupted training continues where it stopped; a run directory trained with other settings is an
    error rather than silently reused.
    """
    from faceswaplab.config import compose
    from faceswaplab.train import train

    overrides = [str(o) for o in overrides]
    run_dir = (Path(cfg.train_dir).expanduser() / name).resolve()
    data = OmegaConf.to_container(cfg.data, resolve=True)

    def use_benchmark_data(train_cfg: DictConfig) -> None:  # before resolution: the method reads data.image_size
        train_cfg.data = OmegaConf.merge(data, {k: train_cfg.data[k] for k in LOADER_KEYS if k in train_cfg.data})

    train_cfg = compose("train", overrides, output_dir=run_dir, edit=use_benchmark_data)
    record = {"overrides": overrides, "config": OmegaConf.to_container(train_cfg, resolve=True)}
    marker = run_dir / "benchmark_train.json"
    if marker.is_file():
        if json.loads(marker.read_text()) == json.loads(json.dumps(record)):
            log.info("%s: reusing the finished training in %s", name, run_dir)
            return run_dir
        raise ValueError(f"methods.{name}: {run_dir} holds a training with other settings (see {marker}); "
                         "delete that folder or choose another train_dir")
    started = run_dir / "config.yaml"
    if started.is_file() and OmegaConf.load(started) != train_cfg:
        raise ValueError(f"methods.{name}: {run_dir} holds an unfinished training with other settings "
                         f"({started}); delete that folder or choose another train_dir")
    log.info("%s: training %s into %s", name, " ".join(overrides), run_dir)
    train(train_cfg)
    write_json(marker, record)
    return run_dir


def resolve_rows(cfg: DictConfig) -> dict[str, dict]:
    """``cfg.methods`` with every ``train`` entry trained (or reused) and given its ``run`` directory."""
    rows = {}
    for name, entry in cfg.methods.items():
        if entry is None:
            continue
        entry = OmegaConf.to_container(entry, resolve=True)
        if entry.get("train") is not None:
            if entry.get("run") is not None:
                raise ValueError(f"methods.{name}: give train=[overrides] or run=<run dir>, not both")
            entry["run"] = str(train_row(name, entry["train"], cfg))
        rows[name] = entry
    return rows


# --------------------------------------------------------------------------------------------------- data


def _run_settings(rows: dict[str, dict]) -> tuple[int | None, Path | None]:
    """The image size and splits file of the trained runs (all must agree)."""
    sizes, splits = {}, {}
    for name, entry in rows.items():
        if entry.get("run") is None:
            continue
        run = Path(entry["run"]).expanduser()
        conf = run / "config.yaml"
        if not conf.is_file():
            raise ValueError(f"methods.{name}.run: {run} is not a run directory (no config.yaml)")
        sizes[name] = int(OmegaConf.load(conf).data.image_size)
        split_file = run / "splits.json"
        if not split_file.is_file():
            raise ValueError(f"methods.{name}.run: {split_file} is missing (the held-out split is unknown)")
        splits[name] = split_file
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the runs were trained at different image sizes {sizes}: benchmark them separately")
    tests = {n: json.dumps({k: v.get("test") for k, v in json.loads(p.read_text())["identities"].items()},
                           sort_keys=True) for n, p in splits.items()}
    if len(set(tests.values())) > 1:
        raise ValueError(f"the runs have different test splits ({sorted(splits)}): their held-out images differ, "
                         "benchmark them separately")
    size = next(iter(sizes.values())) if sizes else None
    return size, (next(iter(splits.values())) if splits else None)


def _data_module(cfg: DictConfig, rows: dict[str, dict]):
    size, splits_file = _run_settings(rows)
    data_cfg = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    if data_cfg.get("mode", "pair") != "pair":
        raise ValueError(f"the benchmark needs data.mode=pair (identities A and B), got {data_cfg.mode!r}")
    if size is not None and size != int(data_cfg.image_size):
        log.info("data.image_size %s -> %d (the trained runs' size)", data_cfg.image_size, size)
        data_cfg.image_size = size
    if splits_file is not None:
        data_cfg.splits_file = str(splits_file)
    data_cfg.num_workers, data_cfg.persistent_workers = 0, False
    dm = hydra.utils.instantiate(data_cfg)
    dm.setup("test")
    return dm, data_cfg


def _sub(batch: dict, idx) -> dict:
    return {k: v[idx] for k, v in batch.items()}


def read_pairs(path: str | Path, dm) -> list:
    """The (source, target) :class:`~faceswaplab.data.datamodule.SampleRef` pairs of a ``pairs.json``."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"pairs_file {path}: cannot read it ({e})") from None
    if data.get("format") != PAIRS_FORMAT:
        raise ValueError(f"pairs_file {path}: not a faceswaplab pair list (format {data.get('format')!r})")
    pairs = []
    for i, p in enumerate(data["pairs"]):
        try:
            pairs.append(tuple(dm.find_sample(*p[k]) for k in ("source", "target")))
        except ValueError as e:
            raise ValueError(f"pairs_file {path}, pair {i}: {e}") from None
    return pairs


def pairs_record(pairs, dm) -> dict:
    """A ``pairs.json`` object naming each pair's samples by identity name and sample id."""
    return {"format": PAIRS_FORMAT, "split": "test",
            "pairs": [{"source": list(dm.sample_key(s)), "target": list(dm.sample_key(t))} for s, t in pairs]}


# ---------------------------------------------------------------------------------------------- benchmark


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
    dm, data_cfg = _data_module(cfg, entries)
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

    rows = {name: _Row(name, entry, data_cfg, device) for name, entry in entries.items()}
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
        row.swap({"source": _sub(source, chunks[0][:1]), "target": _sub(target, chunks[0][:1])},
                 directions[:1])  # warm-up
        outs, elapsed = [], 0.0
        for ch in chunks:
            b = {"source": _sub(source, ch), "target": _sub(target, ch)}
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
            out_lm = _detect(output, int(cfg.detect_size))
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
        results.append({"method": name, **row.describe(), "metrics": values, "speed": speed})
        log.info("%s: %s", name, {k: round(v["mean"], 4) for k, v in values.items()})

    files = _write(out_dir, cfg, data_cfg, results, unavailable, pairs_record(pairs, dm), directions, embedder,
                   source, target, outputs_for_grid)
    if cfg.get("wandb") and cfg.wandb.get("enabled"):
        files["wandb"] = log_to_wandb(cfg, results, files, dm.identity_names)
    return {"results": results, "unavailable": unavailable, "files": files}


# ------------------------------------------------------------------------------------------------ outputs


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


def _write(out_dir: Path, cfg, data_cfg, results, unavailable, pairs, directions, embedder, source, target,
           outputs) -> dict[str, str]:
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
          f"Mean [{conf}% bootstrap interval] over the evaluated pairs; failed: output face not detected.", "",
          "| method | " + " | ".join(names) + " | latency (ms/image) | peak memory (MB) | training (images/s) |",
          "|---" * (len(names) + 4) + "|"]
    for r in results:
        sp = r["speed"]
        train_rate = f"{sp['train_images_per_sec']:.1f}" if math.isfinite(sp["train_images_per_sec"]) else "-"
        md.append(f"| {r['method']} | " + " | ".join(_fmt(r["metrics"][m]) for m in names)
                  + f" | {sp['latency_ms']:.2f} | {sp['peak_memory_mb']:.0f} | {train_rate} |")
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
        "landmark_detector": "dlib HOG (68-point shape predictor)",
        "unavailable": unavailable,
    }
    lines = [json.dumps({**r, **common}, sort_keys=True, default=str) for r in results]
    write_text(out_dir / "results.jsonl", "\n".join(lines) + "\n")

    k = min(int(cfg.sample_rows), n_pairs)
    cols = [source["image"][:k], target["image"][:k]] + [o[:k] for o in outputs.values()]
    grid = torch.stack(cols, 1).flatten(0, 1)  # (k * columns, 3, H, W), row-major
    write_image(out_dir / "samples.png",
                label_columns(make_grid(grid, nrow=len(cols)), ["source", "target", *outputs]))
    files = ["results.csv", "results.md", "results.jsonl", "pairs.json", "samples.png"]
    files += plot_results(results, names, out_dir, conf)
    return {n: str(out_dir / n) for n in files}


# -------------------------------------------------------------------------------------------------- plots

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
            ax.set_yticks(y, methods)
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
    from faceswaplab.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


# ---------------------------------------------------------------------------------------------------- W&B


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


@hydra.main(config_path=CONFIG_DIR, config_name="benchmark", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out = run_benchmark(cfg)
    print(Path(out["files"]["results.md"]).read_text())


if __name__ == "__main__":
    main()
