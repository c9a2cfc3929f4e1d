"""Throughput of dlib's face descriptor: our torch port vs dlib's C++, batch 1 and batch 32, faces/s.

    python benchmarks/face_descriptor_speed.py [--threads 1] [--seconds 2] [--rounds 3] [--out FILE.md]

Two steps are measured on real face chips (the astronaut photo of scikit-image, its face found by dlib):

* ``descriptor``: 150x150 chips in, 128-d descriptors out: ``DlibFaceResNet`` under ``torch.inference_mode`` vs
  ``face_recognition_model_v1.compute_face_descriptor(chips)`` (dlib's batched call for lists);
* ``chip + descriptor``: a 256 px aligned crop and its 68 landmarks in, what the ``dlib`` identity embedder does
  (``DlibEmbedder(backend="torch")`` vs ``backend="dlib"``, which cuts the chip in C++).

Each round times every (step, backend, batch) for at least `--seconds`, in turn (A B A B), so that the load of a
shared machine falls on both backends alike; the table gives the median over rounds and the median per-round
ratio torch / dlib. `--threads` sets torch's intra-op threads and the BLAS/OpenMP threads dlib may use (set before
dlib loads). Writes a Markdown table to `--out` (and prints it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum time per figure and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "face_descriptor_speed.md"))
    return ap.parse_args(argv)


def faces_per_s(fn, n: int, seconds: float) -> float:
    fn()  # warm-up (allocations, first-call setup)
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or k < 2:
        fn()
        k += 1
    return n * k / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import dlib
    import numpy as np
    import torch
    from skimage import data

    from machine import cpu_name  # benchmarks/machine.py
    from faceswaplab.faces.alignment import align_face
    from faceswaplab.faces.backends import DlibBackend
    from faceswaplab.faces.chip import face_chip
    from faceswaplab.io import write_text
    from faceswaplab.metrics import DlibEmbedder
    from faceswaplab.nets.dlib_resnet import dlib_resnet, weights_path

    torch.set_num_threads(args.threads)
    image = data.astronaut()
    face = DlibBackend("hog").faces(image)[0]
    crop, _, lm = align_face(image, face.landmarks, 256)
    crop_t = torch.as_tensor(crop).permute(2, 0, 1)[None].float() / 127.5 - 1
    chip = np.ascontiguousarray(((face_chip(crop_t, lm[None], quantize=True)[0].permute(1, 2, 0) + 1) * 127.5)
                               .round().byte().numpy())
    net, rec = dlib_resnet(), dlib.face_recognition_model_v1(str(weights_path()))
    emb_torch, emb_dlib = DlibEmbedder(batch_size=max(args.batches)), DlibEmbedder(backend="dlib")

    def cases(b):
        chips = [chip] * b
        x = torch.as_tensor(np.stack(chips)).permute(0, 3, 1, 2).float() / 127.5 - 1
        crops, lms = crop_t.expand(b, -1, -1, -1).contiguous(), torch.as_tensor(lm)[None].expand(b, -1, -1)

        def torch_net():
            with torch.inference_mode():
                net(x)

        return {("descriptor", "torch"): torch_net,
                ("descriptor", "dlib C++"): lambda: rec.compute_face_descriptor(chips),
                ("chip + descriptor", "torch"): lambda: emb_torch.embed(crops, lms),
                ("chip + descriptor", "dlib C++"): lambda: emb_dlib.embed(crops, lms)}

    all_cases = {(step, backend, b): fn for b in args.batches for (step, backend), fn in cases(b).items()}
    runs: dict = {key: [] for key in all_cases}
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for key, fn in all_cases.items():
            runs[key].append(faces_per_s(fn, key[2], args.seconds))
    load1 = os.getloadavg()[0]
    command = "python benchmarks/face_descriptor_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# dlib face descriptor: torch port vs dlib C++",
        "",
        f"`{command.strip()}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {cpu_name()}, "
        f"{os.cpu_count()} cores; torch {torch.__version__} with torch.get_num_threads() = "
        f"{torch.get_num_threads()}; dlib {dlib.__version__} (BLAS: {dlib.DLIB_USE_BLAS}); load average "
        f"{load0:.1f} before, {load1:.1f} after. Faces/s: median of {args.rounds} rounds of at least "
        f"{args.seconds:g} s each.",
        "",
        "| step | batch | torch faces/s | dlib C++ faces/s | torch / dlib (median of rounds) |",
        "|---|---:|---:|---:|---:|",
    ]
    for step in ("descriptor", "chip + descriptor"):
        for b in args.batches:
            t, d = np.array(runs[(step, "torch", b)]), np.array(runs[(step, "dlib C++", b)])
            lines.append(f"| {step} | {b} | {np.median(t):.1f} | {np.median(d):.1f} | {np.median(t / d):.2f} |")
    text = "\n".join(lines + [""])
    print(text)
    write_text(args.out, text)


if __name__ == "__main__":
    main()
