"""The benchmark's data: the data module at the trained runs' settings, and the held-out (source, target) pairs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("faceswaplab.benchmark")

PAIRS_FORMAT = "faceswaplab-pairs-1"


def run_settings(rows: dict[str, dict]) -> tuple[int | None, Path | None]:
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


def data_module(cfg: DictConfig, rows: dict[str, dict]):
    size, splits_file = run_settings(rows)
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


def subset(batch: dict, idx) -> dict:
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


def detect(images: torch.Tensor, size: int) -> torch.Tensor:
    """Landmarks (B, 68, 2) of `images` in their own pixels, detected on a copy upscaled to `size`."""
    from faceswaplab.metrics import detect_landmarks

    h = images.shape[-1]
    if h >= size:
        return detect_landmarks(images)
    big = F.interpolate(images.float().cpu(), size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    # Pixel centres at integers: x_small = (x_big + 0.5) * h / size - 0.5.
    return (detect_landmarks(big) + 0.5) * (h / size) - 0.5
