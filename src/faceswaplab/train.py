"""Train a face-swap method (or, for methods without training, set it up and evaluate it) and write its run.

    python -m faceswaplab.train method=landmark_warp
    python -m faceswaplab.train method=landmark_warp data=synthetic method.blend=feather hydra.run.dir=/tmp/run

Everything is composed by Hydra from ``conf/train.yaml`` and instantiated through ``_target_``: ``data`` (the
data module), ``method``, ``logger`` (a mapping of loggers), ``callbacks`` (a mapping) and ``trainer``.

The run directory ``run_dir`` (by default ``runs/<method>/<timestamp>``) holds:

* ``config.yaml``: the resolved config of the run;
* ``splits.json``: the data module's train/val/test splits (reuse them with ``data.splits_file``);
* ``metrics.jsonl``: one JSON object per line, the metrics after each validation (and test) pass;
* ``checkpoints/last.ckpt``: the method, reloadable with ``<Class>.load_from_checkpoint`` or
  :func:`faceswaplab.methods.load_method`; methods with ``trainable = False`` run no training step but still get
  this checkpoint, holding their settings;
* ``preview.png``: rows source | target | swap on held-out (validation) pairs, both directions.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from faceswaplab.config import CONFIG_DIR
from faceswaplab.images import to_image
from faceswaplab.io import atomic_path, write_image, write_text

log = logging.getLogger(__name__)


class RunFiles(Callback):
    """Writes the run directory's ``splits.json``, ``metrics.jsonl`` and ``preview.png`` (global rank 0 only).

    The splits are written once the data module is set up; after every validation pass (not the sanity check)
    the logged metrics are appended to ``metrics.jsonl`` and the preview is redrawn from the first validation
    batch. A resumed run appends to the same ``metrics.jsonl``.
    """

    def __init__(self, run_dir: str | Path, preview_pairs: int = 4):
        self.run_dir = Path(run_dir)
        self.preview_pairs = int(preview_pairs)
        self._preview_batch: dict | None = None

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def preview_path(self) -> Path:
        return self.run_dir / "preview.png"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dm = trainer.datamodule
        if trainer.is_global_zero and dm is not None and hasattr(dm, "save_splits"):
            dm.save_splits(self.run_dir / "splits.json")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and dataloader_idx == 0 and trainer.is_global_zero:
            n = self.preview_pairs
            self._preview_batch = {k: v[:n].detach() if torch.is_tensor(v) else v for k, v in batch.items()}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        self.append_metrics(trainer, "validate")
        if self._preview_batch is not None and self.preview_pairs > 0:
            grid = pl_module.preview(self._preview_batch, max_pairs=self.preview_pairs)
            write_image(self.preview_path, to_image(grid))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.append_metrics(trainer, "test")

    def append_metrics(self, trainer: L.Trainer, stage: str) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
        record = {"stage": stage, "epoch": trainer.current_epoch, "step": trainer.global_step,
                  "time": round(time.time(), 3), **metrics}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Lines are appended whole and flushed, so a crash can at worst lose the last record.
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _instantiate_all(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a mapping (``logger``, ``callbacks``); None gives []."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for c in cfg.values() if c is not None and "_target_" in c]


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training (or set-up) run from a composed config; returns its metrics and the files it wrote."""
    run_dir = Path(cfg.run_dir).expanduser().resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    log.info("data: %s", cfg.data.get("_target_"))
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    log.info("method: %s", cfg.method._target_)
    method: L.LightningModule = hydra.utils.instantiate(cfg.method)
    run_files = RunFiles(run_dir, preview_pairs=cfg.preview.pairs)
    callbacks = _instantiate_all(cfg.get("callbacks")) + [run_files]
    loggers = _instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    last = run_dir / "checkpoints" / "last.ckpt"
    if getattr(method, "trainable", True):
        trainer.fit(method, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    else:
        log.info("%s has no training; validating it and saving its settings", type(method).__name__)
        trainer.validate(method, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        if trainer.is_global_zero:
            with atomic_path(last) as tmp:
                trainer.save_checkpoint(tmp, weights_only=False)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    log.info("run written to %s", run_dir)
    written = lambda p: str(p) if p.exists() else None  # noqa: E731
    return {
        "run_dir": str(run_dir),
        "metrics": metrics,
        "checkpoint": written(last),
        "preview": written(run_files.preview_path),
        "splits": written(run_dir / "splits.json"),
    }


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point (see the module docstring)."""
    result = train(cfg)
    print(json.dumps(result["metrics"], indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
