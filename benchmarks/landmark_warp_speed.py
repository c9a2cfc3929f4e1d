"""Speed of the landmark-warp baseline on one core: the warp alone, and whole swaps with each blend.

    python benchmarks/landmark_warp_speed.py [--sizes 64 128 256 512] [--seconds 2] [--out benchmarks/landmark_warp_speed.md]

Faces are synthetic renders with their exact landmarks (no detection). Each figure repeats the step for at least
`--seconds`; OpenCV and torch are limited to one thread. Wall-clock and process CPU time are both reported: on a
busy machine the CPU time is the steadier figure. Writes a Markdown table to `--out` (and prints it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone

import cv2
import torch

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.faces import warp
from faceswaplab.io import write_text
from faceswaplab.methods.landmark_warp import LandmarkWarp


def timed(fn, seconds: float) -> tuple[float, float]:
    """(ms wall, ms CPU) per call of `fn`."""
    fn()
    n, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds or n < 5:
        fn()
        n += 1
    return 1000 * (time.perf_counter() - wall0) / n, 1000 * (time.process_time() - cpu0) / n


def measure(size: int, seconds: float) -> list[dict]:
    faces = SyntheticFaces(seed=0)
    tgt = faces.render(0, size, pose=(12, -4, 5), expression=(0.4, 0.3, 0, 0))
    src = faces.render(1, size, pose=(-5, 3, 0))
    dst_pts = warp.mesh_points(tgt.landmarks, size)
    src_pts = warp.mesh_points(src.landmarks, size)
    tris = warp.triangulate(dst_pts, size)
    rows = [("triangulate", lambda: warp.triangulate(dst_pts, size)),
            ("piecewise_affine_warp", lambda: warp.piecewise_affine_warp(src.image, src_pts, dst_pts, size, tris))]
    for blend in ("seamless", "feather"):
        m = LandmarkWarp(blend=blend)
        rows.append((f"swap_image ({blend})",
                     lambda m=m: m.swap_image(tgt.image, src.image, tgt.landmarks, src.landmarks)))
    out = []
    for name, fn in rows:
        wall, cpu = timed(fn, seconds)
        out.append({"size": size, "step": name, "ms_wall": wall, "ms_cpu": cpu})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum time per figure")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "landmark_warp_speed.md"))
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [r for s in args.sizes for r in measure(s, args.seconds)]
    command = "python benchmarks/landmark_warp_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# Landmark-warp speed (one core)",
        "",
        f"`{command.strip()}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average {load:.1f}.",
        "",
        "| size | step | ms (wall) | ms (CPU) |",
        "|---:|---|---:|---:|",
        *(f"| {r['size']} | {r['step']} | {r['ms_wall']:.2f} | {r['ms_cpu']:.2f} |" for r in rows),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    write_text(args.out, text)


if __name__ == "__main__":
    main()
