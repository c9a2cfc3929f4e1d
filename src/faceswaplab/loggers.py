"""Logger factories used by ``conf/logger/``."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def wandb_api_key_configured() -> bool:
    """True when W&B can authenticate: ``WANDB_API_KEY`` is set or ``wandb login`` stored a key in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc(os.environ.get("NETRC", Path.home() / ".netrc"))
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    return rc.authenticators(host) is not None


def wandb_offline() -> bool:
    """Whether W&B must run offline: ``WANDB_MODE=offline`` or no API key configured."""
    return os.environ.get("WANDB_MODE") in ("offline", "dryrun") or not wandb_api_key_configured()


def wandb_logger(offline: bool | None = None, save_dir: str | os.PathLike = ".", **kwargs: Any):
    """A Lightning ``WandbLogger`` that runs offline when no API key is configured (or ``offline=True``).

    An offline run is written under ``<save_dir>/wandb/offline-run-*`` and can be uploaded later with
    ``wandb sync <that folder>``.
    """
    from lightning.pytorch.loggers import WandbLogger

    if offline is None:
        offline = wandb_offline()
        if offline:
            log.info("W&B: no API key configured (WANDB_API_KEY or `wandb login`): logging offline to %s", save_dir)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(offline=offline, save_dir=str(save_dir), **kwargs)


def finish_wandb_runs(loggers) -> None:
    """End the W&B runs of these Lightning loggers: the offline files are then complete, and the next training in
    this process (a Hydra sweep, a notebook) starts a run of its own instead of reusing this one."""
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":
            lg.experiment.finish()


def read_wandb_run(run_dir: str | os.PathLike, wait: float = 60.0) -> dict[str, Any]:
    """Read back an offline W&B run folder (``.../wandb/offline-run-*``) without the network.

    Returns ``{"history": [row, ...], "summary": {...}, "config": {...}, "media": [paths], "complete": bool}``;
    each history row maps metric names to values as logged. W&B's service writes the file in the background and
    may still be flushing it when ``run.finish()`` returns: a file without its closing ``exit`` record is read
    again until it has one, for up to `wait` seconds (``complete`` says whether it came). Useful to check a run
    before ``wandb sync`` and in tests.
    """
    import json
    import time

    from wandb.proto import wandb_internal_pb2

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file (is this an offline W&B run folder?)")
    deadline = time.monotonic() + wait
    while True:
        records = [wandb_internal_pb2.Record.FromString(raw) for raw in _wandb_records(files[0])]
        complete = any(r.WhichOneof("record_type") == "exit" for r in records)
        if complete or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    def items(seq) -> dict[str, Any]:
        return {(it.key or "/".join(it.nested_key)): json.loads(it.value_json) for it in seq}

    out: dict[str, Any] = {"history": [], "summary": {}, "config": {}, "complete": complete,
                           "media": sorted(run_dir.glob("files/media/**/*.*"))}
    for rec in records:
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out["history"].append(items(rec.history.item))
        elif kind == "summary":
            out["summary"].update(items(rec.summary.update))
        elif kind == "config":
            out["config"].update(items(rec.config.update))
    return out


def _wandb_records(path: Path) -> list[bytes]:
    """The serialised records of a W&B run file."""
    import struct

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    # The file is a LevelDB-style log: 32 KiB blocks of chunks, each with a 7-byte header (crc, length, type)
    # after a 7-byte file header; records longer than a block are split into first/middle/last chunks.
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:  # zero padding to the end of the block
            pos += room
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
    return records
