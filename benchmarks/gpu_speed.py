"""GPU training throughput per method, precision and memory layout, GPU utilisation, and a real run's speed.

    python benchmarks/gpu_speed.py [--methods cyclegan pix2pix deepfakes simswap styleswap] [--size 128 256]
        [--batch-size 8] [--variants fp32 fp16 bf16 bf16-nhwc bf16-nhwc-compile] [--compile-methods cyclegan]
        [--steps 20] [--warmup 5] [--data-workers 8] [--real-run cyclegan] [--deadline-s 420]
        [--out benchmarks/gpu_speed.md] [--jsonl FILE]

Every training figure is ``train_speed.py``'s measurement (the method's real ``training_step`` in a Lightning
``Trainer`` built from the composed config, on batches drawn beforehand) under one of these variants:

* ``fp32``: ``trainer.precision=32-true`` (cuDNN may still use TF32 for convolutions: torch's default);
* ``fp16`` / ``bf16``: ``16-mixed`` (autocast and gradient scaling) / ``bf16-mixed`` (autocast);
* ``-nhwc``: ``callbacks.accelerate.channels_last=true`` (networks and batches in channels-last layout);
* ``-compile``: ``callbacks.accelerate.compile=true`` (every network through ``torch.compile``); the compilation
  is in the warm-up column, which is why it only pays in long runs.

GPU utilisation is the mean of NVML's "GPU busy" samples (``torch.cuda.utilization``, every 50 ms) over the
timed steps: the share of time a kernel was running, not how much of the GPU it used. Data: the data module's
train loader with ``--data-workers`` workers, measured apart from training, shows whether the loading keeps up.
Real run: ``faceswaplab.train`` itself (loader workers, logging, checkpoints; ``trainer=gpu``) for a fixed number of
steps, and its ``perf/images_per_sec`` against the benchmark step's speed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime, timezone

import torch
from lightning.pytorch.callbacks import Callback

from faceswaplab.io import write_text
from train_speed import compose, fmt, measure, prefetch  # benchmarks/train_speed.py

# The papers' network widths (the GPU presets of conf/experiment/), on the built-in synthetic faces. SimSwap's
# identity network and the style-transfer features are dlib's face ResNet (VGG19's ImageNet weights may be absent).
PAPER = {
    "cyclegan": ["experiment=cyclegan_256"],
    "pix2pix": ["experiment=pix2pix_256"],
    "deepfakes": ["experiment=deepfakes_256"],
    "simswap": ["method=simswap", "method.identity_net=dlib", "method.width=64", "method.n_down=3",
                "method.n_blocks=9", "method.disc_width=64", "method.disc_layers=4", "data.mode=many"],
    "styleswap": ["experiment=styleswap_128", "method.feature_net=face"],
}
COMMON = ["trainer=gpu"]

VARIANTS = {
    "fp32": ["trainer.precision=32-true", "callbacks.accelerate.channels_last=false"],
    "fp16": ["trainer.precision=16-mixed", "callbacks.accelerate.channels_last=false"],
    "bf16": ["trainer.precision=bf16-mixed", "callbacks.accelerate.channels_last=false"],
    "bf16-nhwc": ["trainer.precision=bf16-mixed", "callbacks.accelerate.channels_last=true"],
    "bf16-nhwc-compile": ["trainer.precision=bf16-mixed", "callbacks.accelerate.channels_last=true",
                          "callbacks.accelerate.compile=true"],
}


class Utilisation(Callback):
    """Samples ``torch.cuda.utilization()`` every `every` seconds from the end of the warm-up to the end of fit."""

    def __init__(self, warmup: int, every: float = 0.05):
        self.warmup, self.every = warmup, every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(torch.cuda.utilization())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.warmup - 1 and self._thread is None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


def data_rate(size: int, batch_size: int, workers: int, device: str, run_dir: str) -> dict:
    """Images/s of the default data module's train loader at `size` with `workers` worker processes."""
    cfg = compose("cyclegan", size, batch_size, device,
                  [f"data.num_workers={workers}", "data.A.num_samples=2000", "data.B.num_samples=2000"], run_dir)
    import hydra

    batches, timing = prefetch(hydra.utils.instantiate(cfg.data), n=4 * max(1, workers))
    per_batch = 2 * batches[0]["image_A"].shape[0]
    steady = timing["steady_s"]
    return {"size": size, "workers": workers, "data_images_per_s":
            per_batch * (timing["steady_batches"] / steady if steady else len(batches) / timing["total_s"])}


def real_run(method: str, size: int, batch_size: int, workers: int, steps: int, device: str, run_dir: str) -> dict:
    """``faceswaplab.train`` for `steps` batches on the GPU; its last logged ``perf/images_per_sec``."""
    from faceswaplab.training import train

    cfg = compose(method, size, batch_size, device, [
        *COMMON, *PAPER.get(method, []), f"data.num_workers={workers}", f"trainer.limit_train_batches={steps}", "trainer.max_epochs=1",
        "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", "~logger", "callbacks.throughput.window=10",
        "trainer.log_every_n_steps=1"], run_dir)
    t0 = time.perf_counter()
    out = train(cfg)
    return {"method": method, "size": size, "batch_size": batch_size, "workers": workers, "steps": steps,
            "wall_s": time.perf_counter() - t0, "precision": str(cfg.trainer.precision),
            "images_per_s": out["metrics"].get("perf/images_per_sec")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["cyclegan", "pix2pix", "deepfakes", "simswap", "styleswap"])
    ap.add_argument("--size", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--compile-methods", nargs="*", default=["cyclegan", "deepfakes"],
                    help="methods that get the -compile variants (compilation takes a minute each)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--prefetch", type=int, default=4)
    ap.add_argument("--data-workers", type=int, default=8)
    ap.add_argument("--real-run", nargs="*", default=["cyclegan"], help="methods run through faceswaplab.train")
    ap.add_argument("--real-steps", type=int, default=60)
    ap.add_argument("--deadline-s", type=float, default=420, help="skip what is left after this many seconds")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: only to try this script out")
    ap.add_argument("--out", default=None)
    ap.add_argument("--jsonl", default=None)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("no CUDA device is available: this benchmark measures the GPU path")
    args.overrides, args.threads = [], None
    cuda = args.device == "cuda"
    t_start = time.perf_counter()
    left = lambda: args.deadline_s - (time.perf_counter() - t_start)  # noqa: E731
    command = "python benchmarks/gpu_speed.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    info = {"command": command.strip(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "gpu": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
            "cudnn_tf32": torch.backends.cudnn.allow_tf32, "matmul_tf32": torch.backends.cuda.matmul.allow_tf32}
    print(info, flush=True)
    rows, data, real, skipped = [], [], [], []

    def save() -> None:
        if args.jsonl:
            write_text(args.jsonl, "".join(json.dumps({**r, **info}) + "\n" for r in rows + data + real))
        if args.out:
            write_text(args.out, markdown(rows, data, real, skipped, info, args))

    with tempfile.TemporaryDirectory(prefix="gpu_speed_") as run_dir:
        for size in args.size:
            try:
                data.append({"kind": "data", **data_rate(size, args.batch_size, args.data_workers, args.device,
                                                         run_dir)})
                print(data[-1], flush=True)
            except Exception as e:
                traceback.print_exc()
                data.append({"kind": "data", "size": size, "error": f"{type(e).__name__}: {e}"[:200]})
        for size in args.size:
            for method in args.methods:
                for variant in args.variants:
                    if variant.endswith("compile") and method not in args.compile_methods:
                        continue
                    if left() < 0:
                        skipped.append(f"{method} {size} {variant}")
                        continue
                    args.overrides = [*COMMON, *PAPER.get(method, []), *VARIANTS[variant]]
                    util = Utilisation(args.warmup) if cuda else None
                    try:
                        row = measure(method, size, args, run_dir, callbacks=[util] if util else [])
                        row.update(variant=variant, gpu_util=util.mean if util else None)
                    except Exception as e:
                        traceback.print_exc()
                        row = {"method": method, "size": size, "variant": variant,
                               "error": f"{type(e).__name__}: {e}".replace("\n", " ")[:200]}
                    row["kind"] = "train"
                    rows.append(row)
                    print({k: row.get(k) for k in ("method", "size", "variant", "images_per_s", "gpu_util",
                                                   "warmup_s", "peak_mem_MiB", "error")}, flush=True)
                    if cuda:
                        torch.cuda.empty_cache()
                    save()
        for method in args.real_run:
            size = args.size[0]
            if left() < 0:
                skipped.append(f"real run {method} {size}")
                continue
            try:
                r = real_run(method, size, args.batch_size, args.data_workers, args.real_steps, args.device, run_dir)
            except Exception as e:
                traceback.print_exc()
                r = {"method": method, "size": size, "error": f"{type(e).__name__}: {e}"[:200]}
            r["kind"] = "real"
            real.append(r)
            print(r, flush=True)
    save()
    print(markdown(rows, data, real, skipped, info, args))
    return 1 if any("error" in r for r in rows + data + real) else 0


def markdown(rows, data, real, skipped, info, args) -> str:
    lines = ["# GPU training throughput", "",
             "Each method's real `training_step` on batches drawn beforehand, per precision and memory layout; see",
             "`gpu_speed.py` for the variants and how utilisation is read.", "",
             f"- command: `{info['command']}`", f"- date: {info['date']}",
             f"- device: {info['gpu']}; torch {info['torch']}; cuDNN TF32 {info['cudnn_tf32']}, "
             f"matmul TF32 {info['matmul_tf32']}",
             f"- batch: {args.batch_size} per identity (img/s counts both identities of a pair batch); warm-up steps "
             f"{args.warmup}, timed steps {args.steps}", "",
             "| method | size | variant | train img/s | s/step | GPU busy | warm-up s | peak mem (MiB) |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | {r['size']} | {r['variant']} | failed: {r['error']} |||||")
            continue
        lines.append(f"| {r['method']} | {r['size']} | {r['variant']} | {r['images_per_s']:.0f} "
                     f"| {r['s_per_step'] * 1000:.1f} ms | {fmt(r['gpu_util'], '.0f')}% | {r['warmup_s']:.1f} "
                     f"| {fmt(r['peak_mem_MiB'], '.0f')} |")
    lines += ["", "Data loading (the default synthetic data module, measured apart from training):", "",
              "| size | workers | data img/s |", "|---:|---:|---:|"]
    lines += [f"| {d['size']} | {d.get('workers', '-')} | {fmt(d.get('data_images_per_s'), '.0f')} |" for d in data]
    if real:
        lines += ["", "Real runs (`faceswaplab.train`, `trainer=gpu`, loader workers as above):", "",
                  "| method | size | precision | steps | wall s | perf/images_per_sec |", "|---|---:|---|---:|---:|---:|"]
        lines += [f"| {r['method']} | {r['size']} | {r.get('precision', '-')} | {r.get('steps', '-')} "
                  f"| {fmt(r.get('wall_s'), '.1f')} | {fmt(r.get('images_per_s'), '.0f')} |" for r in real]
    if skipped:
        lines += ["", f"Not measured (past --deadline-s): {', '.join(skipped)}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
