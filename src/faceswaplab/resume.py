"""What a resume may change: a checkpoint continues only under a config that describes the model it holds.

:func:`check_resume` runs before a run directory is written to. It refuses, with one line naming the key:

* another method (``method=``) than the checkpoint's;
* another crop size (``data.image_size``) than the run's;
* another architecture: any setting that changes the weights' names or shapes (``method.gen_width``, ...);
* other optimiser settings (``method.lr``, ``method.beta1``, ...). A resume restores each optimiser's state
  *with* its settings, so such an override would be silently ignored while ``config.yaml`` claimed it. To train on
  with another learning rate, start a new run directory.

Every other change (loss weights, epochs, logging, data loading) is applied and logged, and ``config.yaml``
records it (the previous config is kept as ``config.<n>.yaml``, see :class:`faceswaplab.runs.RunDir`).

:func:`initialise_from` (``init_from=``) is the other way to start from a checkpoint: its weights only, under the
same method and architecture checks, with the run's own optimisers, step 0 and schedules from their start.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from omegaconf import DictConfig

from faceswaplab import checkpoints
from faceswaplab.errors import ConfigError
from faceswaplab.runs import RunDir

log = logging.getLogger(__name__)


class ResumeError(ConfigError):
    """The config asks for something a resume from the given checkpoint cannot give."""


def check_resume(cfg: DictConfig, method: torch.nn.Module, ckpt_path: str | os.PathLike) -> None:
    """Raise :class:`ResumeError` if `method` (built from `cfg`) cannot continue from `ckpt_path` (see the module
    docstring); log the settings that the resume changes. Reads the checkpoint (verified, weights-only) but its
    tensors only lazily."""
    header = checkpoints.load(ckpt_path, mmap=True)
    where = f"the checkpoint {ckpt_path}"
    _check_class(header, method, f"method: {where}", "; train it in another run_dir (hydra.run.dir=...)")

    hparams = dict(header.get("hyper_parameters") or {})
    run = RunDir.of_checkpoint(ckpt_path)
    size = run.image_size if run is not None else hparams.get("image_size")
    wanted = cfg.data.get("image_size")
    if size is not None and wanted is not None and int(size) != int(wanted):
        raise ResumeError(f"data.image_size: {where} was trained on {size} px crops, the config asks for {wanted}; "
                          f"resume with data.image_size={size} or train in another run_dir")

    changed = {k: (hparams[k], v) for k, v in dict(getattr(method, "hparams", {})).items()
               if k in hparams and hparams[k] != v and not (_nan(hparams[k]) and _nan(v))}
    settings = ", ".join(f"method.{k}={new} (checkpoint: {old})" for k, (old, new) in changed.items()) or "none"
    weights = _weights_difference(header["state_dict"], method.state_dict())
    if weights:
        raise ResumeError(f"architecture: {where} does not fit the configured {type(method).__name__} ({weights}); "
                          f"changed settings: {settings}")
    optimiser = _optimiser_difference(header.get("optimizer_states") or [], method)
    if optimiser:
        raise ResumeError(f"optimiser: a resume restores the optimisers of {where} with their own settings, so "
                          f"{optimiser} cannot change (changed settings: {settings}); drop the override, or start "
                          "a new run_dir to train with other settings")
    for k, (old, new) in changed.items():
        log.info("resume changes method.%s: %s -> %s", k, old, new)


def initialise_from(method: torch.nn.Module, source: str | os.PathLike) -> str:
    """Load into `method` the weights of `source` (a ``.ckpt`` file, or a run directory's last checkpoint), to
    train from them as from scratch (DeepFaceLab's training after pretraining): nothing else of the checkpoint is
    used. Raises :class:`ResumeError`, naming the file, for another method class or weights of other names or
    shapes. Returns the checkpoint file."""
    try:
        path = RunDir.checkpoint_of(source)
    except FileNotFoundError as e:
        raise ResumeError(f"init_from={source}: no checkpoint at {e.filename}") from None
    ckpt = checkpoints.load(path)
    _check_class(ckpt, method, f"init_from: {path}", "")
    weights = _weights_difference(ckpt["state_dict"], method.state_dict())
    if weights:
        raise ResumeError(f"init_from: {path} does not fit the configured {type(method).__name__} ({weights}): "
                          "the architecture settings must be those of the run it comes from")
    method.load_state_dict(ckpt["state_dict"])
    return str(path)


def _check_class(header: dict, method: torch.nn.Module, where: str, hint: str) -> None:
    recorded = header.get(checkpoints.CLASS_KEY)
    built = f"{type(method).__module__}.{type(method).__qualname__}"
    if recorded != built:
        raise ResumeError(f"{where} holds {recorded}, the config builds {built}{hint}")


def _nan(x: Any) -> bool:
    return isinstance(x, float) and x != x


def _weights_difference(saved: dict, built: dict) -> str:
    """The first difference between two state dicts' names and shapes, in words ('' if none)."""
    missing, extra = sorted(built.keys() - saved.keys()), sorted(saved.keys() - built.keys())
    if missing or extra:
        parts = [f"{len(missing)} weight(s) not in the checkpoint: {_some(missing)}" if missing else "",
                 f"{len(extra)} weight(s) only in the checkpoint: {_some(extra)}" if extra else ""]
        return "; ".join(p for p in parts if p)
    for name, tensor in built.items():
        if tuple(saved[name].shape) != tuple(tensor.shape):
            return f"{name} is {tuple(saved[name].shape)} there, {tuple(tensor.shape)} here"
    return ""


def _some(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _optimiser_difference(saved: list[dict], method: torch.nn.Module) -> str:
    """The first optimiser setting (``lr``, ``betas``, ...) the configured method would set differently from the
    checkpoint's optimisers ('' if none, or if there is nothing to compare)."""
    if not saved or not hasattr(method, "configure_optimizers"):
        return ""
    try:
        fresh = _optimizers(method.configure_optimizers())
    except Exception as e:  # noqa: BLE001 - a method whose optimisers need the trainer: nothing to compare here
        log.debug("optimisers not compared before resuming: %s", e)
        return ""
    if len(fresh) != len(saved):
        return f"the number of optimisers ({len(saved)} there, {len(fresh)} here)"
    for i, (state, opt) in enumerate(zip(saved, fresh)):
        for j, (old, new) in enumerate(zip(state.get("param_groups", []), opt.param_groups)):
            scheduled = "initial_lr" in old and "initial_lr" in new  # a scheduler moves lr; its start is the setting
            for key in sorted(old.keys() & new.keys() - {"params", "lr" if scheduled else ""}):
                if old[key] != new[key] and not (_nan(old[key]) and _nan(new[key])):
                    return f"optimiser {i} group {j} {key} (checkpoint: {old[key]}, config: {new[key]})"
    return ""


def _optimizers(configured: Any) -> list[torch.optim.Optimizer]:
    """The optimisers in what ``configure_optimizers`` returned (an optimiser, lists, tuples, dicts), in order."""
    if isinstance(configured, torch.optim.Optimizer):
        return [configured]
    if isinstance(configured, dict):
        return _optimizers(configured.get("optimizer"))
    if isinstance(configured, (list, tuple)):
        return [o for item in configured for o in _optimizers(item)]
    return []
