"""The run directory: one object that knows where a training run keeps each of its files.

    >>> from faceswaplab.runs import RunDir
    >>> run = RunDir("runs/deepfakes/2026-01-01_12-00-00")
    >>> run.last_checkpoint.relative_to(run.path).as_posix()
    'checkpoints/last.ckpt'

========================  ========================================================================================
``run.path``              the folder (absolute)
``run.config_file``       ``config.yaml``, the resolved config the run uses now; ``run.config`` loads it
``run.previous_configs``  ``config.0.yaml``, ``config.1.yaml``, ...: the configs of earlier starts that differed,
                          oldest first (:meth:`RunDir.write_config` keeps them)
``run.checkpoint_dir``    ``checkpoints/``
``run.last_checkpoint``   ``checkpoints/last.ckpt`` (its SHA-256 beside it in ``last.ckpt.sha256``)
``run.checkpoints``       every ``checkpoints/*.ckpt``, newest first (``last.ckpt``, then ``epochNNNN.ckpt`` down)
``run.image_size``        the crop size the run trains at (config ``data.image_size``, else the last checkpoint's
                          ``image_size`` hyperparameter); None if neither says
``run.splits_file``       ``splits.json``; ``run.splits`` loads it
``run.metrics_file``      ``metrics.jsonl``; ``run.metrics`` loads it (one dict per validation or test pass)
========================  ========================================================================================

Entry points that take "a run directory or a ``.ckpt`` file" use :meth:`RunDir.checkpoint_of` to get the file and
:meth:`RunDir.of_checkpoint` to get the run a checkpoint belongs to (for its crop size and splits).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

from faceswaplab import checkpoints
from faceswaplab.errors import ConfigError
from faceswaplab.io import write_text

CONFIG = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
SPLITS = "splits.json"
METRICS = "metrics.jsonl"


class RunDir:
    """A training run's directory (see the module docstring for its files). Nothing is read or created until
    asked for."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # ----------------------------------------------------------------------------------------------- finding

    @classmethod
    def checkpoint_of(cls, path: str | os.PathLike) -> Path:
        """The checkpoint file that `path` names: a ``.ckpt`` file itself, or a run directory's last checkpoint.
        Raises ``FileNotFoundError`` naming the path when there is none."""
        path = Path(path).expanduser()
        ckpt = cls(path).last_checkpoint if path.is_dir() else path
        if not ckpt.is_file():
            raise FileNotFoundError(errno.ENOENT, "no checkpoint (expected a run directory or a .ckpt file)",
                                    str(ckpt))
        return ckpt

    @classmethod
    def of_checkpoint(cls, checkpoint: str | os.PathLike) -> RunDir | None:
        """The run directory a checkpoint file belongs to (the folder above ``checkpoints/``, or its own folder),
        if that holds a ``config.yaml``; else None."""
        folder = Path(checkpoint).expanduser().resolve().parent
        for candidate in ((folder.parent, folder) if folder.name == CHECKPOINT_DIR else (folder,)):
            if (candidate / CONFIG).is_file():
                return cls(candidate)
        return None

    # ----------------------------------------------------------------------------------------------- config

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def config(self):
        """The run's ``config.yaml`` as an OmegaConf config (:class:`ConfigError` if missing)."""
        from omegaconf import OmegaConf

        if not self.config_file.is_file():
            raise ConfigError(f"{self.path} is not a run directory (no {CONFIG})")
        return OmegaConf.load(self.config_file)

    @property
    def previous_configs(self) -> list[Path]:
        """``config.<n>.yaml``, oldest first."""
        found = [(p, p.name.split(".")[1]) for p in self.path.glob("config.*.yaml")]
        return [p for p, n in sorted(((p, n) for p, n in found if n.isdigit()), key=lambda x: int(x[1]))]

    def write_config(self, cfg: Any) -> Path:
        """Write `cfg` (resolved) as ``config.yaml``; an earlier ``config.yaml`` that differs is kept as the next
        ``config.<n>.yaml`` first, so the record of every start survives."""
        from omegaconf import OmegaConf

        text = OmegaConf.to_yaml(cfg, resolve=True)
        self.path.mkdir(parents=True, exist_ok=True)
        if self.config_file.is_file() and self.config_file.read_text() != text:
            n = max((int(p.name.split(".")[1]) for p in self.previous_configs), default=-1) + 1
            os.replace(self.config_file, self.path / f"config.{n}.yaml")
        write_text(self.config_file, text)
        return self.config_file

    # ----------------------------------------------------------------------------------------------- checkpoints

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / LAST

    @property
    def checkpoints(self) -> list[Path]:
        """The run's checkpoint files, newest first: ``last.ckpt``, then the others by name, descending."""
        others = sorted((p for p in self.checkpoint_dir.glob("*.ckpt") if p.name != LAST), reverse=True)
        return ([self.last_checkpoint] if self.last_checkpoint.is_file() else []) + others

    def sweep_temporaries(self) -> list[Path]:
        """Delete temporary checkpoint files left by a run killed while writing (see
        :func:`faceswaplab.checkpoints.sweep_temporaries`)."""
        return checkpoints.sweep_temporaries(self.checkpoint_dir)

    @property
    def image_size(self) -> int | None:
        """The crop size the run trains at: ``data.image_size`` of its config, else the ``image_size``
        hyperparameter of its last checkpoint, else None."""
        if self.config_file.is_file():
            size = self.config.get("data", {}).get("image_size")
            if size is not None:
                return int(size)
        if self.last_checkpoint.is_file():
            size = checkpoints.load(self.last_checkpoint, mmap=True).get("hyper_parameters", {}).get("image_size")
            return None if size is None else int(size)
        return None

    # ----------------------------------------------------------------------------------------------- records

    @property
    def splits_file(self) -> Path:
        return self.path / SPLITS

    @property
    def splits(self) -> dict:
        """``splits.json``: ``{"identities": {name: {"train": [...], "val": [...], "test": [...]}}, ...}``."""
        if not self.splits_file.is_file():
            raise FileNotFoundError(errno.ENOENT, "no splits file (the run's held-out split is unknown)",
                                    str(self.splits_file))
        return json.loads(self.splits_file.read_text())

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def metrics(self) -> list[dict]:
        """The records of ``metrics.jsonl`` (empty if there is none yet)."""
        if not self.metrics_file.is_file():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines() if line.strip()]
