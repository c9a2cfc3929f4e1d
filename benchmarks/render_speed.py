"""Speed of the synthetic face renderer: images per second of `SyntheticFaces.sample` on one core.

    python benchmarks/render_speed.py [--sizes 64 128 256 512] [--seconds 3] [--out benchmarks/render_speed.md]

Each size renders distinct samples (identities cycled) for at least `--seconds`; OpenCV is limited to one thread,
so the figures are what one data-loader worker gets. Wall-clock and process CPU time are both reported: on a busy
machine the CPU time per image is the steadier figure. Writes a Markdown table to `--out` (and prints it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone

import cv2
import numpy as np

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.io import write_text
from machine import cpu_name  # benchmarks/machine.py


def measure(faces: SyntheticFaces, size: int, seconds: float) -> dict:
    for i in range(3):  # warm up caches (identity rigs, smoothing matrices)
        faces.sample(i, i, size)
    n, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds or n < 10:
        faces.sample(n % faces.num_identities, 1000 + n, size)
        n += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"size": size, "images": n, "images_per_s": n / wall, "ms_wall": 1000 * wall / n, "ms_cpu": 1000 * cpu / n}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum time per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "render_speed.md"))
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    faces = SyntheticFaces(seed=args.seed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [measure(faces, s, args.seconds) for s in args.sizes]
    command = "python benchmarks/render_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# Synthetic renderer speed",
        "",
        "`SyntheticFaces.sample` (random pose, expression, light, background), one process, OpenCV on one thread.",
        "",
        f"- command: `{command.strip()}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs, load average {load:.2f} at start; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, OpenCV {cv2.__version__}",
        "",
        "| size (px) | images/s (wall) | ms/image (wall) | ms/image (CPU) | images timed |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['size']} | {r['images_per_s']:.0f} | {r['ms_wall']:.2f} | {r['ms_cpu']:.2f} | {r['images']} |"
              for r in rows]
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
