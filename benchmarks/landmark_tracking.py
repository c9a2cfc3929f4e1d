"""How closely the video swap's tracked landmarks follow per-frame detection, and how often it detects.

    python benchmarks/landmark_tracking.py [--similarity 0.6 0.7 0.8 0.9] [--out benchmarks/landmark_tracking.md]

For every video of ``../shared/media/videos``, the reference is dlib HOG detection + 68-point landmarks on the
whole of every frame. The tracked path is :meth:`FaceSwapper.locate` as the swap command runs it (whole-frame
search every ``video.redetect_every`` = 30 frames; in between the shape predictor refitted in the box carried
from the last frame, checked by motion, size and grey-patch correlation >= ``video.track_similarity``, else the
detector), with smoothing off so that raw landmarks are compared. Error: mean point distance / inter-ocular
distance (eye centres), over frames where both found the face; also its 95th percentile and the share of frames
that ran the detector. The "detect near the last face" row is the path without refitting (``video.track=false``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESWAPLAB_MEDIA", ROOT.parent / "shared" / "media"))
SOURCE = MEDIA / "photos" / "biden" / "fr_biden.jpg"


def landmarks_of(video: Path, **video_opts) -> tuple[list, int, float]:
    """Raw landmarks of the largest face per frame (None where none), detector calls, seconds per frame."""
    from faceswaplab.faces.tracking import FaceTracker
    from faceswaplab.swapping import FaceSwapper, SwapOptions
    from faceswaplab.video import iter_frames, probe

    opts = SwapOptions.from_dict({"source": str(SOURCE), "smoothing": {"enabled": False}, "video": video_opts,
                                  "device": "cpu"})
    swapper = FaceSwapper(opts, method="landmark_warp")
    calls = 0
    faces = swapper.faces

    def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        return faces(*args, **kwargs)

    swapper.faces = counted
    tracker = FaceTracker(opts.smoothing)
    dt = 1 / float(probe(video).rate)
    out, seconds = [], 0.0
    for index, _, frame in iter_frames(video):
        t0 = time.perf_counter()
        lms = swapper.locate(frame, tracker, dt, index=index)
        seconds += time.perf_counter() - t0
        out.append(lms[0] if lms else None)
    return out, calls, seconds / len(out)


def errors(ref: list, got: list) -> np.ndarray:
    """Per frame mean point error / inter-ocular distance, where both have a face."""
    e = []
    for a, b in zip(ref, got):
        if a is None or b is None:
            continue
        iod = np.linalg.norm(a[36:42].mean(0) - a[42:48].mean(0))
        e.append(np.linalg.norm(a - b, axis=1).mean() / iod)
    return np.asarray(e)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--similarity", type=float, nargs="+", default=[0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = ap.parse_args(argv)
    videos = sorted((MEDIA / "videos").glob("*.mp4"))
    if not videos:
        sys.exit(f"no videos in {MEDIA / 'videos'} (set FACESWAPLAB_MEDIA)")
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rows = []
    for video in videos:
        ref, _, ref_s = landmarks_of(video, redetect_every=1, track=False)
        found = sum(r is not None for r in ref)
        rows.append((video.name, "detect every frame", len(ref), found, 0.0, 0.0, 1.0, 0, ref_s))
        runs = [("detect near the last face", {"track": False})]
        runs += [(f"refit, similarity >= {s}", {"track_similarity": s}) for s in args.similarity]
        for name, kw in runs:
            got, calls, sec = landmarks_of(video, **kw)
            e = errors(ref, got)
            missed = sum(r is not None and g is None for r, g in zip(ref, got))
            rows.append((video.name, name, len(got), sum(g is not None for g in got), float(e.mean()),
                         float(np.percentile(e, 95)), calls / len(got), missed, sec))
        print(*rows[-1])
    load = os.getloadavg()[0]
    cmd = "python benchmarks/landmark_tracking.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Tracked landmarks against per-frame detection",
        "",
        f"`{cmd.strip()}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPU cores, one "
        f"thread, load average {load:.1f} at the end. dlib HOG + 68-point shape predictor; smoothing off (raw "
        "landmarks); whole-frame search every 30 frames in the tracked paths.",
        "",
        "| video | path | frames | with a face | error / IOD (mean) | error / IOD (95th pct) | frames detected |"
        " face lost (ref. has one) | ms per frame |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {v} | {p} | {n} | {f} | {m:.4f} | {q:.4f} | {d:.0%} | {lost} | {1000 * s:.1f} |"
          for v, p, n, f, m, q, d, lost, s in rows),
        "",
        "Error: mean distance of the 68 points to the per-frame detection's, divided by that frame's inter-ocular "
        "distance (eye centres). Frames detected: share of frames on which the detector ran (the rest were "
        "refitted from the last frame).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    from faceswaplab.io import write_text

    write_text(args.out, text)


if __name__ == "__main__":
    main()
