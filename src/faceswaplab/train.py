"""Train a face-swap method (or, for methods without training, set it up and evaluate it) and write its run.

    python -m faceswaplab.train method=cyclegan
    python -m faceswaplab.train method=landmark_warp data=synthetic method.blend=feather hydra.run.dir=/tmp/run
    python -m faceswaplab.train method=deepfakes trainer=gpu logger=wandb experiment=deepfakes_original

Everything is composed by Hydra from ``conf/train.yaml`` and instantiated through ``_target_``: ``data`` (the
data module), ``method``, ``logger`` (a mapping of loggers), ``callbacks`` (a mapping) and ``trainer``.

The run directory ``run_dir`` (by default ``runs/<method>/<timestamp>``) holds:

* ``config.yaml``: the resolved config of the run;
* ``splits.json``: the data module's train/val/test splits (reuse them with ``data.splits_file``);
* ``metrics.jsonl``: one JSON object per line, the metrics after each validation (and test) pass;
* ``checkpoints/last.ckpt``: the method, reloadable with ``<Class>.load_from_checkpoint`` or
  :func:`faceswaplab.methods.load_method`; methods with ``trainable = False`` run no training step but still get
  this checkpoint, holding their settings;
* ``preview.png``, ``previews/``, ``timelapse.png``: rows source | target | swap on held-out (validation) pairs,
  both directions, and the swaps over training (:class:`faceswaplab.callbacks.Preview`);
* the loggers' folders (``csv/``, ``tensorboard/``, ``wandb/``).

Rerunning into a run directory continues it (see :func:`train`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from faceswaplab.callbacks import AtomicCheckpointIO, Preview, scalar_metrics
from faceswaplab.config import CONFIG_DIR
from faceswaplab.io import write_text
from faceswaplab.loggers import finish_wandb_runs
from faceswaplab.system import usable_cpus

log = logging.getLogger(__name__)


def _instantiate_all(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a mapping (``logger``, ``callbacks``); None gives []."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for c in cfg.values() if c is not None and "_target_" in c]


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> str | None:
    """The checkpoint to continue from: ``ckpt_path`` (a file, or a run directory), else this run's
    ``checkpoints/last.ckpt`` when ``resume`` is on and it exists, else None (a fresh start)."""
    ckpt = cfg.get("ckpt_path")
    if ckpt:
        path = Path(ckpt).expanduser()
        if path.is_dir():
            path = path / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise FileNotFoundError(f"ckpt_path={ckpt}: no checkpoint at {path}")
        return str(path)
    last = run_dir / "checkpoints" / "last.ckpt"
    return str(last) if cfg.get("resume", True) and last.is_file() else None


def cpu_threads(setting: int | str | None, workers: int, processes: int = 1) -> int | None:
    """The torch thread count for the ``threads`` setting: ``"auto"`` shares the cores among the training
    `processes` (DDP on CPU) and leaves one core per data-loader worker of each."""
    if setting is None:
        return None
    if setting == "auto":
        return max(1, usable_cpus() // max(1, processes) - int(workers))
    return int(setting)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training (or set-up) run from a composed config; returns its metrics and the files it wrote.

    Rerunning into a run directory that holds ``checkpoints/last.ckpt`` continues from it: weights, optimisers,
    schedulers, image pools, epoch and step; every epoch reseeds its RNGs from (seed, epoch), so the resumed run
    ends exactly where an uninterrupted one would.
    """
    run_dir = Path(cfg.run_dir).expanduser().resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = resume_checkpoint(cfg, run_dir)
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    log.info("data: %s", cfg.data.get("_target_"))
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    log.info("method: %s", cfg.method._target_)
    method: L.LightningModule = hydra.utils.instantiate(cfg.method)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )

    for lg in trainer.loggers:  # the whole resolved config at the top level: dashboards filter by method.lr, data.A...
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    last = run_dir / "checkpoints" / "last.ckpt"
    devices = cfg.trainer.get("devices")
    processes = devices if isinstance(devices, int) and cfg.trainer.get("accelerator") == "cpu" else 1
    threads = cpu_threads(cfg.get("threads"), cfg.data.get("num_workers") or 0, processes)
    caller_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if getattr(method, "trainable", True):
            if ckpt_path:
                log.info("resuming from %s", ckpt_path)
            trainer.fit(method, datamodule=datamodule, ckpt_path=ckpt_path)
        else:
            log.info("%s has no training; validating it and saving its settings", type(method).__name__)
            trainer.validate(method, datamodule=datamodule)
            trainer.save_checkpoint(last, weights_only=False)  # every rank calls it; only rank 0 writes
    finally:
        torch.set_num_threads(caller_threads)  # a library call leaves the process as it found it
        finish_wandb_runs(trainer.loggers)

    metrics = scalar_metrics(trainer)
    preview = next((c.preview_path for c in callbacks if isinstance(c, Preview)), run_dir / "preview.png")
    log.info("run written to %s", run_dir)
    return {
        "run_dir": str(run_dir),
        "metrics": metrics,
        "checkpoint": str(last) if last.exists() else None,
        "preview": str(preview) if preview.exists() else None,
        "splits": str(run_dir / "splits.json"),
    }


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point (see the module docstring)."""
    result = train(cfg)
    print(json.dumps(result["metrics"], indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
