"""Lightning callbacks that make a run directory: files, previews, speed, reproducible epochs, loss checks.

Every callback here is picked in ``conf/train.yaml`` under ``callbacks:`` (``~callbacks.<name>`` drops one).
"""

from __future__ import annotations

import json
import math
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from faceswaplab import checkpoints
from faceswaplab.data.schema import IMAGE
from faceswaplab.errors import FaceSwapLabError
from faceswaplab.images import make_grid, to_image
from faceswaplab.io import atomic_path, write_image
from faceswaplab.methods.base import logs_this_step, preview_grid
from faceswaplab.runs import RunDir


class NonFiniteLossError(FaceSwapLabError, RuntimeError):
    """A training loss became NaN or infinite; the run stopped without saving the broken weights."""


def scalar_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The trainer's logged single-number metrics as plain floats."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reads and writes through :mod:`faceswaplab.checkpoints`: each checkpoint is written
    to a temporary file, renamed (a killed run never leaves a torn one) and its SHA-256 recorded beside it; a
    resume verifies it and loads it weights-only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        checkpoints.save(lambda tmp: super(AtomicCheckpointIO, self).save_checkpoint(checkpoint, tmp, storage_options),
                         path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return checkpoints.load(path, map_location=map_location)

    def remove_checkpoint(self, path) -> None:
        checkpoints.remove(path)


class RunFiles(Callback):
    """Writes ``splits.json`` once the data is set up and appends one ``metrics.jsonl`` line per validation.

    A resumed run first drops the lines written after its checkpoint, so the file tells one consistent story.
    """

    def __init__(self, run_dir: str | Path):
        self.run = RunDir(run_dir)

    @property
    def metrics_path(self) -> Path:
        return self.run.metrics_file

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dm = trainer.datamodule
        if trainer.is_global_zero and dm is not None and hasattr(dm, "save_splits"):
            dm.save_splits(self.run.splits_file)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path and trainer.is_global_zero and self.metrics_path.exists():
            lines = self.metrics_path.read_text().splitlines()
            kept = [ln for ln in lines if ln.strip() and json.loads(ln).get("step", 0) <= trainer.global_step]
            with atomic_path(self.metrics_path) as tmp:
                tmp.write_text("".join(ln + "\n" for ln in kept))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.is_global_zero:
            self.append(trainer, "validate")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.append(trainer, "test")

    def append(self, trainer: L.Trainer, stage: str) -> None:
        metrics = scalar_metrics(trainer)
        record = {"stage": stage, "epoch": trainer.current_epoch, "step": trainer.global_step,
                  "time": round(time.time(), 3), **metrics}
        self.run.path.mkdir(parents=True, exist_ok=True)
        # Whole lines, appended and flushed: a crash can at worst lose the last record.
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")


class Preview(Callback):
    """Swaps a fixed set of validation pairs during training and writes what it sees.

    * ``preview.png``: rows source | target | swap for both directions (redrawn at every preview);
    * ``previews/swaps_<batch>.png``: the swap column of that moment as one row;
    * ``timelapse.png``: the targets, then one row of swaps per preview (at most `timelapse_rows`, evenly
      spaced), so the training's progress reads top to bottom.

    Previews are drawn every `every_n_batches` training batches and after each validation pass; the preview and
    the timelapse are sent to the run's W&B and TensorBoard loggers as images ``preview`` and ``timelapse``.
    """

    def __init__(self, run_dir: str | Path, pairs: int = 4, every_n_batches: int = 200, timelapse_rows: int = 16):
        self.run_dir = Path(run_dir)
        self.pairs = int(pairs)
        self.every_n_batches = int(every_n_batches)
        self.timelapse_rows = int(timelapse_rows)
        self.batch: dict | None = None

    @property
    def preview_path(self) -> Path:
        return self.run_dir / "preview.png"

    def _fixed_batch(self, trainer: L.Trainer) -> dict | None:
        if self.batch is None and self.pairs > 0 and trainer.datamodule is not None:
            loader = trainer.datamodule.val_dataloader()
            first = next(iter(loader), None)
            if first is not None:
                self.batch = {k: v[: self.pairs] if torch.is_tensor(v) else v for k, v in first.items()}
        return self.batch

    @staticmethod
    def batches_done(trainer: L.Trainer) -> int:
        return trainer.fit_loop.epoch_loop.batch_progress.total.ready

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path and trainer.is_global_zero:  # forget previews drawn after the checkpoint
            for path in (self.run_dir / "previews").glob("swaps_*.png"):
                if int(path.stem.split("_")[1]) > self.batches_done(trainer):
                    path.unlink()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        done = self.batches_done(trainer)
        if self.every_n_batches > 0 and done % self.every_n_batches == 0:
            self.draw(trainer, pl_module, done)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.draw(trainer, pl_module, self.batches_done(trainer))

    def draw(self, trainer: L.Trainer, pl_module, batches_done: int) -> None:
        if not trainer.is_global_zero or self._fixed_batch(trainer) is None:
            return
        batch = {k: v.to(pl_module.device) if torch.is_tensor(v) else v for k, v in self.batch.items()}
        source, target, swapped = pl_module.preview_triples(batch, max_pairs=self.pairs)
        grid = to_image(preview_grid(source, target, swapped))
        write_image(self.preview_path, grid)
        write_image(self.run_dir / "previews" / f"swaps_{batches_done:08d}.png", make_grid(swapped, nrow=64))
        timelapse = self._write_timelapse(target)
        # Lightning logs a batch's metrics at step = batches before it (not at global_step, which counts optimizer
        # steps: two per batch for the GANs); the images go with the metrics of the batch just finished.
        step = max(batches_done - 1, 0)
        for logger in trainer.loggers:
            _log_image(logger, "preview", grid, step)
            _log_image(logger, "timelapse", timelapse, step)

    def _write_timelapse(self, targets: torch.Tensor) -> np.ndarray:
        """Rewrite ``timelapse.png`` from the preview's targets (N, 3, H, W) and the swap rows so far; returns the
        image."""
        rows = sorted((self.run_dir / "previews").glob("swaps_*.png"))
        if len(rows) > self.timelapse_rows:  # keep the first and the last, evenly spaced between
            idx = np.linspace(0, len(rows) - 1, self.timelapse_rows).round().astype(int)
            rows = [rows[i] for i in sorted(set(idx))]
        from PIL import Image

        strip = [make_grid(targets, nrow=64)] + [np.asarray(Image.open(p).convert("RGB")) for p in rows]
        width = max(r.shape[1] for r in strip)
        strip = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in strip]
        timelapse = np.concatenate(strip, 0)
        write_image(self.run_dir / "timelapse.png", timelapse)
        return timelapse


def _log_image(logger, name: str, image: np.ndarray, step: int) -> None:
    """Send an (H, W, 3) uint8 image to W&B or TensorBoard; other loggers ignore images."""
    kind = type(logger).__name__
    if kind == "WandbLogger":
        logger.log_image(key=name, images=[image], step=step)
    elif kind == "TensorBoardLogger":
        logger.experiment.add_image(name, image, step, dataformats="HWC")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: CUDA's peak allocation on `device`, else this process's peak resident set size (which
    never decreases)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


class Throughput(Callback):
    """Logs ``perf/images_per_sec`` (face images through a training step per second, both identities counted),
    ``perf/sec_per_batch`` and ``perf/peak_memory_mb`` (CUDA's peak allocation on GPUs, the process's peak
    resident memory on CPUs), averaged over the last `window` batches; and the training's budget so far,
    ``perf/images_seen`` (face images through training steps, all processes) and ``perf/wall_s`` (seconds since
    training started, validation included), both kept in checkpoints so a resumed run continues the count. They
    are logged on the steps the logger writes and at an epoch's end."""

    def __init__(self, window: int = 20):
        self.window = int(window)
        self.times: list[tuple[float, int]] = []
        self._start = 0.0
        self.images_seen = 0
        self.wall_s = 0.0  # before the current fit started (a resumed run's earlier time)
        self._fit_start = None

    def state_dict(self) -> dict:
        return {"images_seen": self.images_seen, "wall_s": self._wall()}

    def load_state_dict(self, state: dict) -> None:
        self.images_seen = int(state.get("images_seen", 0))
        self.wall_s = float(state.get("wall_s", 0.0))

    def _wall(self) -> float:
        return self.wall_s + (time.perf_counter() - self._fit_start if self._fit_start is not None else 0.0)

    def on_train_start(self, trainer, pl_module) -> None:
        self._fit_start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        peak = peak_memory_mb(pl_module.device)
        n = sum(int(v.shape[0]) for k, v in batch.items() if k.startswith(IMAGE) and torch.is_tensor(v))
        self.times = (self.times + [(time.perf_counter() - self._start, n)])[-self.window :]
        self.images_seen += n * trainer.world_size
        if not logs_this_step(trainer):  # Lightning's cost per logged value is as much as a small net's step
            return
        seconds = sum(t for t, _ in self.times)
        images = sum(c for _, c in self.times)
        pl_module.log_dict(
            {"perf/images_per_sec": images / max(seconds, 1e-9) * trainer.world_size,
             "perf/sec_per_batch": seconds / len(self.times), "perf/peak_memory_mb": float(peak),
             "perf/images_seen": float(self.images_seen), "perf/wall_s": self._wall()},
            on_step=True, on_epoch=False, batch_size=1,
        )


class SeedEveryBatch(Callback):
    """Reseeds torch, numpy and Python's RNGs before every training batch from (seed, epoch, batch, rank).

    Each step's randomness (random warps, dropout, augmentation drawn in the step) then depends on nothing but its
    place in training, so a run resumed from a checkpoint repeats exactly what an uninterrupted run does next,
    whatever else drew random numbers in between (validation, data loader start-up).
    """

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        state = np.random.SeedSequence([self.seed, trainer.current_epoch, batch_idx, trainer.global_rank])
        a, b = state.generate_state(2)
        random.seed(int(a))
        np.random.seed(int(a))
        torch.manual_seed(int(b))


class FiniteLoss(Callback):
    """Stops the run with :class:`NonFiniteLossError` as soon as a logged ``train/`` value is NaN or infinite.

    The error is raised before any checkpoint of the broken weights is written, so ``last.ckpt`` stays the last
    good state; the message names the newest of the run's checkpoints that verifies
    (:func:`faceswaplab.checkpoints.verify`).
    """

    def __init__(self, run_dir: str | Path):
        self.run = RunDir(run_dir)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for name, value in trainer.callback_metrics.items():
            if name.startswith("train/") and torch.is_tensor(value) and not math.isfinite(float(value)):
                good, failed = checkpoints.newest_verified(self.run.checkpoints)
                if good is not None:
                    kept = f"the last good checkpoint is {good} (verified)"
                    resume = f"resume with ckpt_path={good}"
                else:
                    kept = "no checkpoint had been written yet" if not failed else "no checkpoint verifies"
                    resume = "start again"
                skipped = "".join(f"; {reason}" for reason in failed.values())
                raise NonFiniteLossError(
                    f"{name} became {float(value)} at epoch {trainer.current_epoch}, batch {batch_idx} "
                    f"(global step {trainer.global_step}); training stopped and {kept}{skipped}. "
                    f"Lower the learning rate or check the data, then {resume}."
                )


class Accelerate(Callback):
    """Channels-last memory format and ``torch.compile`` for the method's networks (both off by default).

    `channels_last`: store the networks' weights and the batches' images as NHWC, the layout of cuDNN's tensor-core
    convolutions. `compile`: false, true, or a ``torch.compile`` mode (``"max-autotune"``, ``"reduce-overhead"``);
    each network is compiled in place (:meth:`torch.nn.Module.compile`), so checkpoints keep their plain parameter
    names. Compilation is paid in the first steps of every run (and again for each new batch shape): it pays only
    in long runs. ``benchmarks/gpu_speed.md`` has the measured gains of both per method.
    """

    def __init__(self, channels_last: bool = False, compile: bool | str = False):
        if not isinstance(channels_last, bool):
            raise ValueError(f"channels_last must be true or false, got {channels_last!r}")
        self.channels_last = channels_last
        self.compile = compile

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.channels_last:  # before the strategy moves the module: .to(device) keeps the layout
            pl_module.to(memory_format=torch.channels_last)
        if self.compile:
            mode = self.compile if isinstance(self.compile, str) else None
            for net in networks(pl_module):
                net.compile(mode=mode)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.channels_last and isinstance(batch, dict):
            for key, value in batch.items():
                if torch.is_tensor(value) and value.dim() == 4 and value.is_floating_point():
                    batch[key] = value.contiguous(memory_format=torch.channels_last)


def networks(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The networks a method holds: its child modules, looking into ``ModuleDict`` / ``ModuleList`` containers
    (which have no forward of their own), skipping parameter-free ones (losses without weights)."""
    found = []
    for child in module.children():
        if isinstance(child, (torch.nn.ModuleDict, torch.nn.ModuleList)):
            found += networks(child)
        elif any(True for _ in child.parameters()):
            found.append(child)
    return found
