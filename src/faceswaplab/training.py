"""Training a face-swap method (or, for methods without training, setting it up and evaluating it) into its run
directory: :func:`train` runs a composed ``conf/train.yaml`` config (``python -m faceswaplab.train`` is its
command line, :mod:`faceswaplab.train`).

Everything is composed by Hydra from ``conf/train.yaml`` and instantiated through ``_target_``: ``data`` (the
data module), ``method``, ``logger`` (a mapping of loggers), ``callbacks`` (a mapping) and ``trainer``.

The run directory ``run_dir`` (by default ``runs/<method>/<timestamp>``) holds:

* ``config.yaml``: the resolved config of the run (``config.<n>.yaml``: those of earlier starts that differed);
* ``splits.json``: the data module's train/val/test splits (reuse them with ``data.splits_file``);
* ``metrics.jsonl``: one JSON object per line, the metrics after each validation (and test) pass;
* ``checkpoints/last.ckpt`` and its ``.sha256``: the method, reloadable with :func:`faceswaplab.load` or
  :func:`faceswaplab.methods.load_method` (verified, weights-only); methods with ``trainable = False`` run no
  training step but still get this checkpoint, holding their settings;
* ``preview.png``, ``previews/``, ``timelapse.png``: rows source | target | swap on held-out (validation) pairs,
  both directions, and the swaps over training (:class:`faceswaplab.callbacks.Preview`);
* the loggers' folders (``csv/``, ``tensorboard/``, ``wandb/``).

Rerunning into a run directory continues it (see :func:`train`). :class:`faceswaplab.runs.RunDir` names these
files for every other entry point.
"""

from __future__ import annotations

import logging
import typing
from typing import Any, Literal, Union

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from faceswaplab.callbacks import AtomicCheckpointIO, Preview, scalar_metrics
from faceswaplab.errors import ConfigError
from faceswaplab.loggers import finish_wandb_runs
from faceswaplab.resume import check_resume, initialise_from
from faceswaplab.runs import RunDir
from faceswaplab.system import usable_cpus

log = logging.getLogger(__name__)


def _instantiate_all(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a mapping (``logger``, ``callbacks``); None gives []."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for c in cfg.values() if c is not None and "_target_" in c]


def resume_checkpoint(cfg: DictConfig, run: RunDir) -> str | None:
    """The checkpoint to continue from: ``ckpt_path`` (a file, or a run directory), else this run's last
    checkpoint when ``resume`` is on and it exists, else None (a fresh start)."""
    ckpt = cfg.get("ckpt_path")
    if ckpt:
        try:
            return str(RunDir.checkpoint_of(ckpt))
        except FileNotFoundError as e:
            raise ConfigError(f"ckpt_path={ckpt}: no checkpoint at {e.filename}") from None
    last = run.last_checkpoint
    return str(last) if cfg.get("resume", True) and last.is_file() else None


def check_config(cfg: DictConfig) -> None:
    """Refuse, with :class:`ConfigError` naming the key, a config with missing values (``???``) or a ``trainer``
    setting whose type Lightning's ``Trainer`` does not take (``trainer.max_epochs=abc``)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]}: no value given (set it on the command line: {missing[0]}=...)")
    hints = typing.get_type_hints(L.Trainer.__init__)
    for name, value in OmegaConf.to_container(cfg.trainer, resolve=True).items():
        if name in hints and _matches(value, hints[name]) is False:
            raise ConfigError(f"trainer.{name}: expected {_describe(hints[name])}, got {value!r}")


def _matches(value: Any, hint: Any) -> bool | None:
    """Whether a plain config value fits a type hint; None where the hint is not a plain type (not checked)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        results = [_matches(value, a) for a in args]
        return True if True in results else (None if None in results else False)
    if origin is Literal:
        return value in args and type(value) in {type(a) for a in args}
    if hint is type(None):
        return value is None
    if hint in (int, float, bool, str):
        ok = isinstance(value, hint) or (hint is float and isinstance(value, int))
        return ok and (hint is bool or not isinstance(value, bool))
    if origin in (list, dict):
        return isinstance(value, origin)
    return None


def _describe(hint: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        return " or ".join(dict.fromkeys(_describe(a) for a in args))
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    return names.get(hint, getattr(hint, "__name__", str(hint)))


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

    ``init_from`` (a run directory or ``.ckpt``) starts a fresh run from another run's weights (a pretrained
    model): weights only, the method and architecture checked as for a resume. A resume (``ckpt_path``, or this
    run's own last checkpoint) wins: a rerun continues its own training and ``init_from`` is not read.

    Rerunning into a run directory that holds a last checkpoint continues from it: weights, optimisers,
    schedulers, image pools, epoch and step; every epoch reseeds its RNGs from (seed, epoch), so the resumed run
    ends exactly where an uninterrupted one would. Before anything is written the config is checked
    (:func:`check_config`) and so is the checkpoint against it (:func:`faceswaplab.resume.check_resume`: same
    method, crop size, architecture and optimiser settings; the file verified against its SHA-256); then stale
    temporary checkpoint files are removed and ``config.yaml`` written (an earlier one that differs is kept as
    ``config.<n>.yaml``).
    """
    if cfg.get("tiny_method"):  # debug=smoke: the method's own tiny settings (FaceSwapMethod.tiny)
        for k, v in hydra.utils.get_class(cfg.method._target_).tiny.items():
            OmegaConf.update(cfg, f"method.{k}", v, force_add=True)
    check_config(cfg)
    run = RunDir(cfg.run_dir)
    finetune = cfg.get("finetune")
    if finetune:  # few-shot fine-tuning: ckpt_path is the meta-learnt start; this run's own last.ckpt resumes
        cls = hydra.utils.get_class(cfg.method._target_)
        if not hasattr(cls, "finetune_setup"):
            raise ConfigError(f"finetune: {cls.__name__} has no few-shot fine-tuning (method=fewshot has)")
        if not cfg.get("ckpt_path"):
            raise ConfigError("finetune: give the meta-learning run to start from, ckpt_path=<run dir or .ckpt>")
    init_from = cfg.get("init_from")
    if init_from and finetune:
        raise ConfigError("init_from: few-shot fine-tuning starts from ckpt_path; give only that")
    ckpt_path = resume_checkpoint(cfg, run)
    if finetune:
        meta = ckpt_path
        ckpt_path = str(run.last_checkpoint) if cfg.get("resume", True) and run.last_checkpoint.is_file() else None
    L.seed_everything(cfg.seed, workers=True)

    log.info("data: %s", cfg.data.get("_target_"))
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    log.info("method: %s", cfg.method._target_)
    method: L.LightningModule = hydra.utils.instantiate(cfg.method)
    if finetune:
        check_resume(cfg, method, meta)
        finetune = finetune if isinstance(finetune, str) else hydra.utils.instantiate(finetune)
        datamodule = method.finetune_setup(finetune, meta, datamodule)
    if ckpt_path:
        check_resume(cfg, method, ckpt_path)  # before anything in the run directory changes
        if init_from:
            log.info("init_from=%s not used: resuming %s", init_from, ckpt_path)
    elif init_from:
        log.info("weights from %s (fresh optimiser, step 0)", initialise_from(method, init_from))
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    # Every DDP process runs this function, on every node; the Trainer has read the cluster environment
    # (NODE_RANK, SLURM_PROCID, ...) by now, so its global rank names the one writer.
    if trainer.is_global_zero:
        run.sweep_temporaries()
        run.write_config(cfg)

    for lg in trainer.loggers:  # the whole resolved config at the top level: dashboards filter by method.lr, data.A...
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    last = run.last_checkpoint
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
    preview = next((c.preview_path for c in callbacks if isinstance(c, Preview)), run.path / "preview.png")
    log.info("run written to %s", run.path)
    return {
        "run_dir": str(run.path),
        "metrics": metrics,
        "checkpoint": str(last) if last.exists() else None,
        "preview": str(preview) if preview.exists() else None,
        "splits": str(run.splits_file),
    }
