"""What a real ``python -m faceswaplab.train`` run gets from the CPU, per thread and loader-worker policy.

    python benchmarks/real_run_speed.py [--methods cyclegan deepfakes] [--seconds 60] [--rounds 2]
        [--policies workers1_auto workers0_threads2] [--busy 0] [--out benchmarks/real_run_speed.md]

Each policy runs the method's real command (its CPU preset, ``trainer.max_time`` cut to `--seconds` of training,
no validation until the end) in a subprocess, policies alternating A B A B ... so that a change in the machine's
load hits them alike. Training images per second come from the run itself: a callback added on its command line counts the
images its steps consume from the fit loop's start to its end, waits for data included (start-up, the data
module's set-up and the sanity check are left out). ``train_speed.py`` gives the step rate on
batches drawn beforehand, the ceiling a run could reach.

Policies (overrides of the command line):

* ``workers1_auto``: the presets' defaults: one renderer process (``data.num_workers=1``), ``threads=auto`` (the
  cores left after one per worker);
* ``workers0_threads2``: rendering in the training process between steps, torch on two threads;
* ``workers1_threads2``: one renderer process and torch on two threads (oversubscribed on two cores);
* ``workers0_threads1``: rendering in the training process, torch on one thread;
* ``..._spin`` / ``..._passive``: the same with OpenMP's idle threads spinning (``OMP_WAIT_POLICY=ACTIVE``) or
  sleeping (``PASSIVE``) at the end of each parallel region instead of the runtime's default;
* ``workers0_threads2_render``: as ``workers0_threads2`` with the synthetic renders made in every run
  (``data.A.store=false``) instead of read from the ones kept on disk.

``--fill-store`` first renders every training face of each method's data into the kept renders (as a first run
would, untimed), so that the timed runs measure a machine where the data was made before.

``--busy K`` keeps K other processes spinning on the CPU during every run: a shared machine (a notebook's browser,
another job), where an OpenMP thread waiting for a descheduled sibling can cost far more than the work.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from faceswaplab.io import write_text

IN_PROCESS = ["data.num_workers=0", "data.persistent_workers=false"]
POLICIES = {  # name: (command-line overrides, environment)
    "workers1_auto": (["data.num_workers=1", "threads=auto"], {}),
    "workers0_threads2": ([*IN_PROCESS, "threads=2"], {}),
    "workers1_threads2": (["data.num_workers=1", "threads=2"], {}),
    "workers0_threads1": ([*IN_PROCESS, "threads=1"], {}),
    "workers0_threads2_spin": ([*IN_PROCESS, "threads=2"], {"OMP_WAIT_POLICY": "ACTIVE"}),
    "workers0_threads2_passive": ([*IN_PROCESS, "threads=2"], {"OMP_WAIT_POLICY": "PASSIVE"}),
    "workers0_threads2_render": ([*IN_PROCESS, "threads=2", "data.A.store=false"], {}),
}


def _spin() -> None:
    while True:
        pass


class ImageCounter(Callback):
    """Counts the face images the training steps consume from the fit loop's start to its end (data waits
    included) and writes ``{"images", "seconds"}`` to `path`; added to the run by its command line."""

    def __init__(self, path: str):
        self.path, self.images, self.t0 = path, 0, 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.images += sum(int(v.shape[0]) for k, v in batch.items() if k.startswith("image") and v.dim() == 4)

    def on_train_end(self, trainer, pl_module) -> None:
        Path(self.path).write_text(json.dumps({"images": self.images, "seconds": time.perf_counter() - self.t0}))


def run_once(method: str, policy: str, seconds: int, run_dir: Path) -> dict:
    """One real training run; its training images per second."""
    counts = run_dir.parent / f"{run_dir.name}.json"
    minutes, secs = divmod(seconds, 60)
    cmd = [sys.executable, "-m", "faceswaplab.train", f"method={method}", f"hydra.run.dir={run_dir}",
           f"trainer.max_time=00:00:{minutes:02d}:{secs:02d}", "trainer.check_val_every_n_epoch=1000",
           "trainer.enable_progress_bar=false", "~logger", "callbacks.preview.pairs=0",
           "+callbacks.count._target_=real_run_speed.ImageCounter", f"+callbacks.count.path={counts}",
           *POLICIES[policy][0]]
    env = {**os.environ, **POLICIES[policy][1], "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not counts.is_file():
        return {"method": method, "policy": policy, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    got = json.loads(counts.read_text())
    return {"method": method, "policy": policy, "images": got["images"], "fit_s": got["seconds"], "wall_s": wall,
            "images_per_s": got["images"] / got["seconds"]}


def fill_store(method: str) -> None:
    """Loads every training face of `method`'s data once, so that kept renders exist for all of them."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from faceswaplab.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("train", overrides=[f"method={method}"])
    dm = instantiate(cfg.data)
    dm.setup("fit")
    t0 = time.perf_counter()
    ds = dm.dataset("train")
    parts = (ds.a, ds.b) if hasattr(ds, "a") else ds.datasets  # pair or many mode
    for part in parts:
        for i in range(len(part)):
            part[(i, -1)]
    print(f"{method}: {sum(len(p) for p in parts)} training faces loaded in {time.perf_counter() - t0:.1f} s",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["cyclegan", "deepfakes"])
    ap.add_argument("--policies", nargs="+", default=["workers1_auto", "workers0_threads2"], choices=list(POLICIES))
    ap.add_argument("--seconds", type=int, default=60, help="training time of each run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--busy", type=int, default=0, help="other processes spinning on the CPU during the runs")
    ap.add_argument("--fill-store", action="store_true", help="make the kept synthetic renders before timing")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    command = "python benchmarks/real_run_speed.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    load = [os.getloadavg()[0]]
    rows = []
    busy = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for proc in busy:
        proc.start()
    if args.fill_store:
        for method in args.methods:
            fill_store(method)
    with tempfile.TemporaryDirectory(prefix="real_run_") as tmp:
        for method in args.methods:
            for r in range(args.rounds):
                for policy in args.policies:  # A B A B: a load change hits every policy alike
                    row = run_once(method, policy, args.seconds, Path(tmp) / f"{method}_{policy}_{r}")
                    row["round"] = r
                    rows.append(row)
                    print(row, flush=True)
    load.append(os.getloadavg()[0])
    for proc in busy:
        proc.terminate()
    lines = ["# Real training runs: thread and loader-worker policies", "", f"- command: `{command}`",
             f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; {os.cpu_count()} logical CPUs; "
             f"torch {torch.__version__}; load average {load[0]:.2f} at start, {load[1]:.2f} at end; "
             f"{args.busy} other spinning processes", "",
             "| method | policy | training img/s per round | mean | vs first policy |", "|---|---|---|---:|---:|"]
    for method in args.methods:
        base = None
        for policy in args.policies:
            got = [r for r in rows if r["method"] == method and r["policy"] == policy and "error" in r]
            vals = [r["images_per_s"] for r in rows if r["method"] == method and r["policy"] == policy
                    and "images_per_s" in r]
            if got or not vals:
                lines.append(f"| {method} | {policy} | failed: {got[0]['error'] if got else '-'} | | |")
                continue
            mean = statistics.fmean(vals)
            base = base or mean
            lines.append(f"| {method} | {policy} | {', '.join(f'{v:.1f}' for v in vals)} | {mean:.1f} "
                         f"| {mean / base:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
