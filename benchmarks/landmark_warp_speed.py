"""Speed of the landmark-warp baseline on one core: the warp alone, and whole swaps with each blend.

    python benchmarks/landmark_warp_speed.py [--sizes 64 128 256 512] [--seconds 2] [--reference PATH]
        [--pairs 40] [--out benchmarks/landmark_warp_speed.md]

Faces are synthetic renders with their exact landmarks (no detection). Each figure repeats the step for at least
`--seconds`; OpenCV and torch are limited to one thread. Wall-clock and process CPU time are both reported: on a
busy machine the CPU time is the steadier figure. Writes a Markdown table to `--out` (and prints it).

`--reference` is a checkout of wuhuikai/FaceSwap, the widely used dlib + OpenCV face swap (nothing of it is copied
here): its ``face_swap.face_swap`` (piecewise-affine warp of the first 48 landmarks, hull mask, colour correction,
Poisson blend) and our ``swap_image`` (seamless) swap the same faces with the same landmarks, calls alternating,
`--pairs` pairs per size; the ratio is the median over the pairs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from datetime import datetime, timezone

import cv2
import numpy as np
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


def load_reference(path: str):
    """The reference's ``face_swap`` module, imported from its checkout without edits."""
    spec = importlib.util.spec_from_file_location("reference_face_swap", Path(path) / "face_swap.py")
    if spec is None or not (Path(path) / "face_swap.py").is_file():
        sys.exit(f"{path}: not a checkout of wuhuikai/FaceSwap (no face_swap.py)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def versus(size: int, reference, pairs: int) -> dict:
    """Our seamless swap against the reference's on the same faces, calls alternating: ms each and their ratio."""
    faces = SyntheticFaces(seed=0)
    tgt = faces.render(0, size, pose=(12, -4, 5), expression=(0.4, 0.3, 0, 0))
    src = faces.render(1, size, pose=(-5, 3, 0))
    ours = LandmarkWarp(blend="seamless")
    src_pts, dst_pts = np.round(src.landmarks).astype(int), np.round(tgt.landmarks).astype(int)
    args = SimpleNamespace(correct_color=True, warp_2d=False)  # colour correction on, as ours

    def theirs():
        reference.face_swap(src.image, tgt.image, src_pts, dst_pts, (0, 0, size, size), tgt.image, args)

    def mine():
        ours.swap_image(tgt.image, src.image, tgt.landmarks, src.landmarks)

    rows = {"ours": [], "reference": []}
    for fn in (mine, theirs):
        fn()  # warm-up
    for _ in range(pairs):
        for name, fn in (("ours", mine), ("reference", theirs)):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            rows[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    ratio = statistics.median(o[0] / r[0] for o, r in zip(rows["ours"], rows["reference"]))
    cpu_ratio = statistics.median(o[1] / max(r[1], 1e-9) for o, r in zip(rows["ours"], rows["reference"]))
    med = {k: 1000 * statistics.median(t[0] for t in v) for k, v in rows.items()}
    return {"size": size, "ours": med["ours"], "reference": med["reference"], "ratio": ratio, "cpu_ratio": cpu_ratio}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum time per figure")
    ap.add_argument("--reference", help="a checkout of wuhuikai/FaceSwap to swap the same faces side by side")
    ap.add_argument("--pairs", type=int, default=40, help="alternating call pairs per size against the reference")
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
    if args.reference:
        reference = load_reference(args.reference)
        side = [versus(s, reference, args.pairs) for s in args.sizes]
        lines += [
            f"Against the reference ({args.reference}: wuhuikai/FaceSwap's `face_swap`, colour correction on), the "
            f"same faces and landmarks, calls alternating, {args.pairs} pairs per size; load average "
            f"{os.getloadavg()[0]:.1f} at the end:",
            "",
            "| size | ours, seamless (ms) | reference (ms) | ours / reference (wall) | ours / reference (CPU) |",
            "|---:|---:|---:|---:|---:|",
            *(f"| {r['size']} | {r['ours']:.2f} | {r['reference']:.2f} | **{r['ratio']:.2f}** | {r['cpu_ratio']:.2f} |"
              for r in side),
            "",
        ]
    text = "\n".join(lines)
    print(text)
    write_text(args.out, text)


if __name__ == "__main__":
    main()
