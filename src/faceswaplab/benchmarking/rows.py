"""The rows of a benchmark: references, untrained methods, trained runs, and methods the benchmark trains itself."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from faceswaplab.io import write_json
from faceswaplab.runs import RunDir

log = logging.getLogger("faceswaplab.benchmark")

# Reference rows, measured through the same path as the methods: the target left as it is (no identity moved, all
# attributes kept), the source photo itself (all identity, none of the target's attributes), and another photo of
# the source identity (a realistic identity ceiling: what a real photo of that person scores).
REFERENCES = ("target", "source", "source_other")
# Data-module keys a training preset may change without changing which faces the benchmark evaluates (group_size:
# how training batches are drawn, e.g. few-shot episodes).
LOADER_KEYS = ("batch_size", "eval_batch_size", "num_workers", "persistent_workers", "pin_memory", "group_size")


class Row:
    """One benchmark row: how to produce outputs for a batch of pairs. `checkpoint`: a run row's checkpoint to load
    instead of its ``last.ckpt`` (an earlier point of its training)."""

    def __init__(self, name: str, entry: dict, data_cfg: DictConfig, device: torch.device,
                 checkpoint: str | Path | None = None):
        self.name, self.entry, self.device = name, dict(entry), device
        self.model, self.reference, self.checkpoint, self.run = None, None, None, None
        # Keyword arguments of the row's swap calls, e.g. {shots: 8} (K source photos per pair).
        self.swap_options = dict(entry.get("swap") or {})
        kinds = [k for k in ("run", "method", "reference") if entry.get(k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"methods.{name}: give exactly one of train=[overrides], run=<run dir>, "
                             f"method=<conf/method name> or reference={'|'.join(REFERENCES)}, got {dict(entry)}")
        if "reference" in kinds:
            if entry["reference"] not in REFERENCES:
                raise ValueError(f"methods.{name}.reference must be one of {REFERENCES}, got {entry['reference']!r}")
            self.reference = entry["reference"]
            if self.swap_options:
                raise ValueError(f"methods.{name}.swap: reference rows take no swap options")
        elif "method" in kinds:
            from faceswaplab.methods.build import build_method

            try:  # the method config may read the data group (e.g. the mask's forehead)
                self.model = build_method(entry["method"], data=data_cfg)
            except ValueError as e:
                raise ValueError(f"methods.{name}.method: {e}; use methods.{name}.train=[method={entry['method']}] "
                                 f"or methods.{name}.run=<run dir>") from None
        else:
            from faceswaplab.methods import load_method

            self.run = RunDir(entry["run"])
            self.checkpoint = Path(checkpoint) if checkpoint is not None else self.run.last_checkpoint
            if not self.checkpoint.is_file():
                raise ValueError(f"methods.{name}.run: no checkpoint {self.checkpoint}")
            self.model = load_method(self.checkpoint)
        if self.model is not None:
            self.model = self.model.to(device).eval()

    @torch.no_grad()
    def swap(self, batch: dict, direction: list[str]) -> torch.Tensor:
        """Outputs (B, 3, H, W) for the pairs of ``batch["source"]``, ``batch["target"]`` (and
        ``batch["source_other"]``, another photo of each source identity, for that reference; with the swap option
        ``shots: K``, ``batch["source_shots"]`` holds K - 1 more photos of each source, (B, K - 1, ...))."""
        s, t = batch["source"], batch["target"]
        if self.reference is not None:
            return batch[self.reference]["image"].clone()
        options = dict(self.swap_options)
        shots = int(options.get("shots", 1))
        images, landmarks = s["image"], s["landmarks"]
        if shots > 1:  # each pair's K photos, the source first: (B * K, ...)
            more = batch["source_shots"]
            images = torch.cat([images[:, None], more["image"][:, : shots - 1]], 1)
            landmarks = torch.cat([landmarks[:, None], more["landmarks"][:, : shots - 1]], 1)
        else:
            options.pop("shots", None)
        out = torch.empty_like(t["image"])
        # Identity-specific methods take the direction per pair; run each direction's pairs together.
        for d in sorted(set(direction)):
            idx = torch.tensor([i for i, x in enumerate(direction) if x == d])
            out[idx] = self.model.swap(
                t["image"][idx].to(self.device), images[idx].flatten(0, images.dim() - 4).to(self.device),
                target_landmarks=t["landmarks"][idx].to(self.device),
                source_landmarks=landmarks[idx].flatten(0, landmarks.dim() - 3).to(self.device), direction=d,
                **options,
            ).float().cpu().clamp(-1, 1)
        return out

    def describe(self) -> dict:
        kind = "reference" if self.reference else ("method" if not self.checkpoint else
                                                   "train" if self.entry.get("train") else "run")
        return {"kind": kind, "row": {k: str(v) for k, v in self.entry.items()},
                "class": type(self.model).__qualname__ if self.model is not None else None,
                "checkpoint": str(self.checkpoint) if self.checkpoint else None}

    def train_throughput(self) -> float:
        """Median ``perf/images_per_sec`` logged by the run's validations (NaN without a run or a record)."""
        if self.run is None:
            return math.nan
        rates = [float(r["perf/images_per_sec"]) for r in self.run.metrics if r.get("perf/images_per_sec") is not None]
        return float(np.median(rates)) if rates else math.nan


PROTOCOLS = ("pair", "held_out")


def train_row(name: str, overrides, cfg: DictConfig, protocol: str = "pair") -> Path:
    """Train row `name` (``conf/train.yaml`` with `overrides`, on the benchmark's data) into
    ``cfg.train_dir/name``, or reuse the finished training there; returns the run directory.

    ``protocol="pair"``: the data module's identities, splits, image size and augmentation come from the benchmark's
    ``data``; only loader settings (batch size, workers) come from the training config, so the held-out pairs are
    never trained on. ``protocol="held_out"`` (one-shot methods): the training config's many-identity set is trained
    on, with the benchmark's identities A and B held out (``data.identities.held_out``: none of their images is
    trained on; their test split is the benchmark's), so every pair scored is of identities the method never saw.
    An interrupted training continues where it stopped; a run directory trained with other settings is an
    error rather than silently reused.
    """
    from faceswaplab.config import compose
    from faceswaplab.training import train

    if protocol not in PROTOCOLS:
        raise ValueError(f"methods.{name}.protocol must be one of {PROTOCOLS}, got {protocol!r}")
    overrides = [str(o) for o in overrides]
    run_dir = (Path(cfg.train_dir).expanduser() / name).resolve()
    data = OmegaConf.to_container(cfg.data, resolve=True)

    def use_benchmark_data(train_cfg: DictConfig) -> None:  # before resolution: the method reads data.image_size
        own = {k: train_cfg.data[k] for k in LOADER_KEYS if k in train_cfg.data}
        if protocol == "held_out":
            identities = train_cfg.data.get("identities")
            if train_cfg.data.get("mode") != "many" or identities is None or "held_out" not in identities:
                raise ValueError(f"methods.{name}.protocol=held_out: the training config needs data.mode=many and an "
                                 "identity set with held_out (e.g. experiment=simswap_cpu)")
            identities = OmegaConf.to_container(identities, resolve=True)
            identities["held_out"] = [data["A"], data["B"]]
            own.update(mode="many", identities=identities)
        train_cfg.data = OmegaConf.merge(data, own)

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
    rows, trained = {}, {}
    for name, entry in cfg.methods.items():
        if entry is None:
            continue
        entry = OmegaConf.to_container(entry, resolve=True)
        if entry.get("train") is not None:
            if entry.get("run") is not None:
                raise ValueError(f"methods.{name}: give train=[overrides] or run=<run dir>, not both")
            # Rows that differ only in how they swap (e.g. K shots) share one training: the first row's.
            same = json.dumps([list(map(str, entry["train"])), entry.get("protocol") or "pair"])
            if same not in trained:
                trained[same] = str(train_row(name, entry["train"], cfg, entry.get("protocol") or "pair"))
            entry["run"] = trained[same]
        rows[name] = entry
    return rows
