"""What one augmented training pair costs the process that loads it, on the synthetic data at 64 px.

    python benchmarks/sample_path.py [--method deepfakes] [--pairs 200] [--rounds 3] [--threads 1] [--batch 4]

Loads the same `--pairs` training pairs of ``python -m faceswaplab.train method=<method>``'s data (augmentation on,
as the training sampler draws them) three ways, in turn for `--rounds` rounds so that other load hits them alike:

* ``rendered``: renders made every time (``data.A.store=false``, no in-memory cache);
* ``stored``: renders read from the ones kept on disk (filled before the first round), no in-memory cache;
* ``warm``: the in-memory sample cache already holds them (a later epoch of the same run);
* ``warm, batched``: the same, fetched `--batch` pairs at a time (``__getitems__``, as the DataLoader fetches a
  batch: one augmentation call per side for the batch; the pairs are identical to those fetched one by one).

Prints milliseconds per pair (median of the rounds) and the ratios to ``rendered``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from hydra.utils import instantiate

from faceswaplab.config import compose


def dataset(method: str, store: bool, ram_mb: int):
    cfg = compose("train", [f"method={method}", f"data.A.store={str(store).lower()}", f"data.ram_cache_mb={ram_mb}"])
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return dm.dataset("train")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="deepfakes")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4, help="pairs per fetch of the batched way (the preset's batch)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ways = {"rendered": dataset(args.method, False, 0), "stored": dataset(args.method, True, 0),
            "warm": dataset(args.method, True, 256)}
    items = [(i % len(ways["warm"].a), (7 * i) % len(ways["warm"].b), i) for i in range(args.pairs)]
    for name in ("stored", "warm"):  # fill the store and the cache: what a first pass would do
        for it in items:
            ways[name][it]
    batches = [items[j:j + args.batch] for j in range(0, len(items), args.batch)]
    ms: dict[str, list[float]] = {k: [] for k in [*ways, "warm, batched"]}
    for _ in range(args.rounds):
        for name, ds in ways.items():
            t0 = time.perf_counter()
            for it in items:
                ds[it]
            ms[name].append(1000 * (time.perf_counter() - t0) / len(items))
        t0 = time.perf_counter()
        for batch in batches:
            ways["warm"].__getitems__(batch)
        ms["warm, batched"].append(1000 * (time.perf_counter() - t0) / len(items))
    load = os.getloadavg()[0]
    print(f"{args.method}, {args.pairs} pairs x {args.rounds} rounds, torch threads {torch.get_num_threads()}, "
          f"load average {load:.2f}")
    base = statistics.median(ms["rendered"])
    for name, vals in ms.items():
        med = statistics.median(vals)
        print(f"  {name:14s} {med:6.2f} ms per pair ({', '.join(f'{v:.2f}' for v in vals)}); "
              f"{base / med:.1f}x rendered")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
