"""One Adam step over each trainable method's parameters on CPU: torch's for-loop, foreach and fused kernels.

    python benchmarks/optimizer_step.py [--methods ...] [--steps 30] [--threads 2]

Each method is built as ``python -m faceswaplab.train method=<name>`` builds it (its CPU preset's widths), its
parameters copied three times with the same random gradients, and one Adam per kernel stepped in turn (for-loop,
foreach, fused, for-loop, ...) so that other load hits them alike. Prints the median ms per step and the ratio to
the for-loop kernel, torch's default on CPU. ``FaceSwapMethod.adam`` picks the fused kernel on CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from hydra.utils import instantiate

from faceswaplab.config import compose

KERNELS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def step_times(method: str, steps: int) -> tuple[int, int, dict[str, float]]:
    """(parameters, tensors, median ms per step of each kernel)."""
    cfg = compose("train", [f"method={method}"])
    model = instantiate(cfg.method)
    optimisers = {}
    for kernel, kw in KERNELS.items():
        params = [p.detach().clone().requires_grad_() for p in model.parameters()]
        g = torch.Generator().manual_seed(0)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g) * 1e-3
        optimisers[kernel] = torch.optim.Adam(params, lr=1e-4, **kw)
        optimisers[kernel].step()  # allocate the moments
    times: dict[str, list[float]] = {k: [] for k in KERNELS}
    for _ in range(steps):
        for kernel, opt in optimisers.items():
            t = time.perf_counter()
            opt.step()
            times[kernel].append(time.perf_counter() - t)
    n = sum(p.numel() for p in model.parameters())
    return n, len(list(model.parameters())), {k: 1000 * statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, os.path.dirname(__file__))
    from train_speed import trainable_methods

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=None, help="default: every trainable method")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = args.methods or trainable_methods()
    command = f"python benchmarks/optimizer_step.py {' '.join(sys.argv[1:] if argv is None else argv)}".strip()
    print(f"`{command}`; torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps per "
          f"kernel, alternating; load average {os.getloadavg()[0]:.2f} at the start\n")
    print("| method | parameters (M) | tensors | for-loop ms | foreach ms | fused ms | fused / for-loop |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method in methods:
        n, k, ms = step_times(method, args.steps)
        print(f"| {method} | {n / 1e6:.2f} | {k} | {ms['for-loop']:.2f} | {ms['foreach']:.2f} | {ms['fused']:.2f} | "
              f"{ms['fused'] / ms['for-loop']:.2f} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
