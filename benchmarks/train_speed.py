"""Training throughput of every trainable method: images/s and achieved GFLOP/s against a plain fp32 matmul.

    python benchmarks/train_speed.py [--methods cyclegan pix2pix deepfakes] [--size 64 128] [--batch-size N]
        [--steps 3] [--warmup 2] [--prefetch 4] [--threads N] [--device cpu|cuda]
        [--out benchmarks/train_speed.md] [--jsonl FILE] [OVERRIDE ...]

Each method's config is composed by Hydra from ``conf/train.yaml`` with ``method=<name>`` (plus
``data.image_size``, ``data.batch_size`` and any extra Hydra OVERRIDEs such as ``method.gen_width=64``), so the
networks, losses and optimisers are exactly those of ``python -m faceswaplab.train method=<name>``. Then:

* data: the data module is instantiated from the config and `--prefetch` batches are drawn from its train loader
  (its own workers, augmentation on); the rate after each worker's first batch (so not the start-up) gives the
  data-loading throughput. Those batches are kept, so rendering is not part of the training figures.
* FLOPs: the first training step runs under ``torch.utils.flop_counter.FlopCounterMode``, which counts the
  matmuls and convolutions of the forward and backward passes of every network the step runs (element-wise ops,
  normalisation and the optimiser updates are not counted, so GFLOP/s is a lower bound of the work done).
* time: the method's own ``training_step`` runs in a ``lightning.Trainer`` built from the config's ``trainer``
  (no logger, checkpoints or validation); after `--warmup` untimed steps (the first one is the counted one),
  `--steps` steps are timed by a callback, from the end of one batch to the end of the next (CUDA synchronised).
* reference: a 2048 x 2048 fp32 matmul is timed in the same process with the same threads, before and after
  the methods; the ratio of a method's GFLOP/s to the faster of the two is its utilisation.

Images/s counts both identities of a pair batch: 2 x batch size per step.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from faceswaplab.config import CONFIG_DIR
from faceswaplab.io import write_text
from machine import cpu_name  # benchmarks/machine.py


def cpu_features() -> str:
    """The vector instruction sets (of those that matter for fp32 GEMMs) listed in /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    found = [f for f in ("avx2", "fma", "avx512f", "amx_tile", "asimd", "sve") if f in flags]
    return " ".join(found) or "none of avx2/avx512f/amx/asimd/sve"


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def trainable_methods() -> list[str]:
    """Names of the method configs whose class trains (``trainable``), in file order."""
    names = []
    for path in sorted(Path(CONFIG_DIR, "method").glob("*.yaml")):
        with hydra.initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = hydra.compose(config_name="train", overrides=[f"method={path.stem}"])
        if getattr(hydra.utils.get_class(cfg.method._target_), "trainable", True):
            names.append(path.stem)
    return names


def compose(method: str, size: int | None, batch_size: int | None, device: str, overrides: list[str],
            run_dir: str) -> DictConfig:
    """The training config of `method`, as ``python -m faceswaplab.train`` would compose it with these options."""
    args = [f"method={method}", f"run_dir={run_dir}", *overrides]
    if size is not None:
        args.append(f"data.image_size={size}")
    if batch_size is not None:
        args.append(f"data.batch_size={batch_size}")
    args.append(f"trainer.accelerator={device}")
    with hydra.initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra.compose(config_name="train", overrides=args)


def matmul_gflops(device: str, n: int = 2048, seconds: float = 2.0) -> float:
    """GFLOP/s of repeated fp32 (n, n) @ (n, n) matmuls (2 n^3 FLOPs each)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    c = a @ b  # warm-up (thread pool, kernels)
    synchronize(device)
    reps, t0 = 0, time.perf_counter()
    while True:
        c = a @ b
        reps += 1
        if reps % 4 == 0 or device == "cpu":
            synchronize(device)
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds and reps >= 3:
                break
    del c
    return 2 * n**3 * reps / elapsed / 1e9


def prefetch(datamodule: L.LightningDataModule, n: int) -> tuple[list[dict], dict]:
    """Draw `n` batches from the train loader; returns them and the loader's timing.

    The timing has ``first_batch_s`` (worker start-up and the first batch) and ``steady_s`` / ``steady_batches``:
    the time from the end of the workers' first round (each worker's first batch) to the last batch, which
    excludes the start-up that every worker pays at once; None when `n` does not exceed the number of workers.
    """
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    if len(loader) < n:
        raise ValueError(f"the train split has only {len(loader)} batches, fewer than --prefetch {n}")
    workers = max(1, loader.num_workers)
    t0 = time.perf_counter()
    it = iter(loader)
    batches, arrivals = [], []
    for _ in range(n):
        batches.append(next(it))
        arrivals.append(time.perf_counter())
    del it, loader  # stops the (persistent) workers: they must not compete with the timed steps
    gc.collect()
    timing = {"first_batch_s": arrivals[0] - t0, "total_s": arrivals[-1] - t0, "steady_s": None, "steady_batches": 0}
    if n > workers:
        timing.update(steady_s=arrivals[-1] - arrivals[workers - 1], steady_batches=n - workers)
    return batches, timing


class StepTimer(Callback):
    """Counts the FLOPs of the first training step and times every step from index `warmup` on.

    A step's time runs from the end of the previous batch to the end of this one, so it includes everything the
    loop does per batch (fetching the batch, moving it to the device, hooks, logging), not only training_step.
    """

    def __init__(self, warmup: int, device: str, count_flops: bool = True):
        if warmup < 1:
            raise ValueError("warmup must be >= 1: the first step is the FLOP-counted one")
        self.warmup, self.device, self.count_flops = warmup, device, count_flops
        self.flops: int | None = None
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.warmup_s = 0.0  # the untimed first steps together (torch.compile's compilation happens there)
        self._counter: FlopCounterMode | None = None
        self._last: tuple[float, float] = (0.0, 0.0)

    def on_train_start(self, trainer, pl_module) -> None:
        synchronize(self.device)
        self._last = (time.perf_counter(), time.process_time())

    @contextmanager
    def excluded(self):
        """Leave the time spent inside out of the step being timed (work done between or beside the steps)."""
        synchronize(self.device)
        t0 = (time.perf_counter(), time.process_time())
        yield
        synchronize(self.device)
        self._last = (self._last[0] + time.perf_counter() - t0[0], self._last[1] + time.process_time() - t0[1])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0 and self.count_flops:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self._counter is not None:  # a failed step must not leave the counter on for the next measurements
            self._counter.__exit__(None, None, None)
            self._counter = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops = self._counter.get_total_flops()
            self._counter = None
        synchronize(self.device)
        now = (time.perf_counter(), time.process_time())
        if batch_idx >= self.warmup:
            self.wall.append(now[0] - self._last[0])
            self.cpu.append(now[1] - self._last[1])
        else:
            self.warmup_s += now[0] - self._last[0]
        self._last = now


def measure(method: str, size: int | None, args: argparse.Namespace, run_dir: str,
            callbacks: list[Callback] = ()) -> dict:
    """One row of the table: data and training throughput of `method` at `size` (`callbacks` run too)."""
    cfg = compose(method, size, args.batch_size, args.device, args.overrides, run_dir)
    row = {"method": method, "size": int(cfg.data.image_size), "batch_size": int(cfg.data.batch_size),
           "device": args.device, "threads": torch.get_num_threads()}
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.method)
    row["params_M"] = sum(p.numel() for p in model.parameters()) / 1e6

    batches, timing = prefetch(datamodule, args.prefetch)
    n_images = lambda b: 2 * b["image_A"].shape[0] if "image_A" in b else b["image"].shape[0]  # noqa: E731
    per_step = n_images(batches[0])
    if timing["steady_s"]:
        row["data_images_per_s"] = sum(n_images(b) for b in batches[-timing["steady_batches"]:]) / timing["steady_s"]
    else:  # too few batches for a steady rate: start-up included
        row["data_images_per_s"] = sum(n_images(b) for b in batches) / timing["total_s"]
    row.update(data_workers=int(cfg.data.get("num_workers", 0)), data_first_batch_s=timing["first_batch_s"],
               data_steady=bool(timing["steady_s"]))

    total = args.warmup + args.steps
    compiled = bool(cfg.callbacks.get("accelerate", {}).get("compile"))
    # The FLOP counter mixes neither with dynamo nor with torch.autograd.grad (gradient penalties): no count there.
    count = not compiled and not model.hparams.get("lambda_gp")
    timer = StepTimer(args.warmup, args.device, count_flops=count)
    # the run's channels-last / torch.compile settings (callbacks.accelerate) apply here as in a real run
    accelerate = [hydra.utils.instantiate(cfg.callbacks.accelerate)] if cfg.callbacks.get("accelerate") else []
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=[*accelerate, timer, *callbacks], logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=1, max_steps=-1, max_time=None, limit_val_batches=0,
        num_sanity_val_steps=0)  # max_time: a preset's time budget must not cut the measured steps short
    # One epoch over the kept batches, cycled (manual optimisation counts optimizer steps, not batches, in
    # global_step, so the run length is set by the loader rather than max_steps).
    loader = DataLoader([batches[i % len(batches)] for i in range(total)], batch_size=None)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, train_dataloaders=loader)
    if len(timer.wall) != args.steps or (timer.flops is None and count):
        raise RuntimeError(f"{method}: expected {args.steps} timed steps, got {len(timer.wall)}")

    step_s = sum(timer.wall) / len(timer.wall)
    flops = timer.flops or 0
    row.update(
        images_per_step=per_step,
        warmup_s=timer.warmup_s,
        gflop_per_step=flops / 1e9 if timer.flops else None,
        s_per_step=step_s,
        s_per_step_median=statistics.median(timer.wall),
        step_s=[round(t, 4) for t in timer.wall],
        cpu_step_s=[round(t, 4) for t in timer.cpu],
        cpu_s_per_step=sum(timer.cpu) / len(timer.cpu),
        images_per_s=per_step / step_s,
        gflops=flops / 1e9 / step_s if timer.flops else None,
        peak_mem_MiB=torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else None,
    )
    del trainer, model, datamodule, batches, loader
    gc.collect()
    return row


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(rows: list[dict], peak: float) -> list[str]:
    lines = ["| method | size | batch | params (M) | GFLOP/step | data img/s | train img/s | s/step | CPU s/step "
             "| GFLOP/s | of matmul | peak mem (MiB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | {r.get('size', '-')} | {r.get('batch_size', '-')} | failed: "
                         f"{r['error']} |||||||||")
            continue
        data = f"{r['data_images_per_s']:.0f}" + ("" if r["data_steady"] else "*")
        lines.append(
            f"| {r['method']} | {r['size']} | {r['batch_size']} | {r['params_M']:.2f} | {fmt(r['gflop_per_step'], '.1f')} "
            f"| {data} | {r['images_per_s']:.1f} | {r['s_per_step']:.3f} | {r['cpu_s_per_step']:.3f} "
            f"| {fmt(r['gflops'], '.1f')} | {fmt(r['gflops'] and 100 * r['gflops'] / peak, '.0f')}% "
            f"| {fmt(r['peak_mem_MiB'], '.0f')} |")
    return lines


def markdown(rows: list[dict], info: dict) -> str:
    peak = max(info["matmul_gflops"])
    device = info["device_name"]
    workers = ", ".join(sorted({str(r["data_workers"]) for r in rows if "data_workers" in r})) or "-"
    lines = [
        "# Training throughput",
        "",
        "Each method's real `training_step` (config composed as by `python -m faceswaplab.train method=<name>`) in a",
        "`lightning.Trainer`, on batches drawn from the data module beforehand; see `train_speed.py` for details.",
        "",
        f"- command: `{info['command']}`",
        f"- date: {info['date']}",
        f"- machine: {info['cpu']} ({info['cpu_features']}), {info['cores']} logical CPUs; device {device}; "
        f"torch {info['torch']}, {info['threads']} torch threads; Python {platform.python_version()}",
        f"- load average (1 min): {info['load_before']:.2f} at start, {info['load_after']:.2f} at end"
        + (" (busy: other processes shared the CPUs, so wall-clock figures are slower than on a quiet machine)"
           if info["load_before"] > 0.5 * (info["cores"] or 1) else ""),  # the benchmark's own load comes later
        f"- fp32 matmul 2048 x 2048: {info['matmul_gflops'][0]:.1f} GFLOP/s before the methods, "
        f"{info['matmul_gflops'][1]:.1f} after (utilisation is against {peak:.1f})",
        f"- warm-up steps: {info['warmup']} (the first one FLOP-counted); timed steps: {info['steps']}",
        f"- data: {info['prefetch']} batches drawn from the data module and cycled; loader workers: {workers}",
        "",
        *table(rows, peak),
        "",
        "- img/s counts both identities of a pair batch (2 x batch per step). data img/s: the data module's train",
        "  loader with its configured workers (augmentation on), from each worker's first batch to the last one",
        "  (* : too few batches for that, worker start-up included), measured apart from training; when both share",
        "  the CPU a real run gets less than either rate.",
        "- GFLOP/step: matmuls and convolutions of the forward and backward passes of one training step, counted",
        "  by `torch.utils.flop_counter.FlopCounterMode` (element-wise ops, norms and optimiser updates excluded).",
        "- s/step: wall clock per step; CPU s/step: this process's CPU time per step, all threads together (on a",
        "  busy machine the steadier figure: with T threads and no contention, s/step is at least CPU s/step / T).",
        "- of matmul: GFLOP/s as a fraction of the plain fp32 matmul above, same process, same threads.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=None, help="method config names (default: every trainable one)")
    ap.add_argument("--size", type=int, nargs="+", default=[None], help="data.image_size (default: the config's)")
    ap.add_argument("--batch-size", type=int, default=None, help="data.batch_size (default: the config's)")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per method and size")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first one counts the FLOPs)")
    ap.add_argument("--prefetch", type=int, default=4, help="batches drawn from the data module, then cycled")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--matmul-seconds", type=float, default=2.0)
    ap.add_argument("--out", default=None, help="write the Markdown report here")
    ap.add_argument("--jsonl", default=None, help="write one JSON object per row here")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. method.gen_width=64")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    if args.steps < 1 or args.prefetch < 1:
        ap.error("--steps and --prefetch must be >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    logging.basicConfig(level=logging.WARNING)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"lightning\..*")

    command = "python benchmarks/train_speed.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    trainable = trainable_methods()
    methods = args.methods or trainable
    for m in methods:
        if m not in trainable:
            ap.error(f"method {m!r}: not a trainable method config (trainable: {', '.join(trainable)})")
    info = {
        "command": command.strip(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_name(), "cpu_features": cpu_features(), "cores": os.cpu_count(), "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "warmup": args.warmup, "steps": args.steps, "prefetch": args.prefetch, "load_before": load_average(),
    }
    if args.device == "cuda":  # TF32 convolutions can beat the (fp32) matmul reference
        info["device_name"] += (f" (cuda.matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}, "
                                f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32})")
    print(f"{info['cpu']}, {info['cores']} CPUs, device {info['device_name']}, torch {info['torch']}, "
          f"{info['threads']} threads, load {info['load_before']:.2f}", flush=True)
    gflops = [matmul_gflops(args.device, seconds=args.matmul_seconds)]
    print(f"fp32 matmul: {gflops[0]:.1f} GFLOP/s", flush=True)

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="train_speed_") as run_dir:
        for method in methods:
            for size in args.size:
                print(f"{method} size {size or 'default'} ...", flush=True)
                try:
                    row = measure(method, size, args, run_dir)
                except Exception as e:  # a failing method is reported in the table; the others still run
                    traceback.print_exc()
                    row = {"method": method, "size": size, "batch_size": args.batch_size,
                           "error": f"{type(e).__name__}: {e}".replace("|", "/").replace("\n", " ")[:200]}
                else:
                    print(f"  {row['images_per_s']:.1f} img/s, {row['s_per_step']:.3f} s/step, "
                          f"{fmt(row['gflops'], '.1f')} GFLOP/s ({fmt(row['gflop_per_step'], '.1f')} GFLOP/step), "
                          f"data {row['data_images_per_s']:.0f} img/s", flush=True)
                rows.append(row)
    gflops.append(matmul_gflops(args.device, seconds=args.matmul_seconds))
    info.update(matmul_gflops=gflops, load_after=load_average())

    text = markdown(rows, info)
    print(text)
    if args.out:
        write_text(args.out, text)
    if args.jsonl:
        peak = max(gflops)
        lines = [json.dumps({**r, "matmul_gflops": peak,
                             "utilisation": r["gflops"] / peak if r.get("gflops") else None,
                             "date": info["date"], "command": info["command"], "cpu": info["cpu"],
                             "torch": info["torch"], "load_before": info["load_before"]}) for r in rows]
        write_text(args.jsonl, "\n".join(lines) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
