"""Frames per second of ``faceswaplab.swap`` on a 720p video with one face, per method, on CPU: the previous
video path against the current one, and the current one's time per stage.

    python benchmarks/swap_speed.py [--frames 180] [--threads 1 2] [--repeats 2] [--baseline 8e3ea88]

Converts the first `--frames` frames of ``../shared/media/videos/lp_s32_woman_interview.mp4`` (1280x720, 30 fps,
audio) end to end through :func:`faceswaplab.swapping.swap_media`: decode, face tracking / detection (dlib HOG and
68-point landmarks), alignment, the swap, mask, colour transfer, seamless blend, H.264 encode and the final mux with
audio. Methods: the landmark-warp baseline (source: a photo of ``photos/biden``) and the DeepFakes autoencoder of
``conf/method/deepfakes.yaml`` at its default size, untrained (a trained one runs the same operations).

Every run is a fresh process with `--threads` torch and OpenCV threads. "old" runs the code of commit
`--baseline` (extracted with ``git archive``: every frame detected near the last face, one frame at a time, all
in one thread); "new" the working tree with the defaults of ``conf/swap.yaml`` (landmarks refitted between
detections, batches of 8 frames, pasting, decoding and encoding in threads). They alternate (old new old new ...)
so that a change in the machine's load hits both; the ratio of the medians is the robust figure on a shared
machine. "new, one thread" (``video.workers=0``) runs every stage in turn in one thread, so its stage times add
up to its wall time. Writes Markdown to `--out` (and prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESWAPLAB_MEDIA", ROOT.parent / "shared" / "media"))
VIDEO = MEDIA / "videos" / "lp_s32_woman_interview.mp4"
SOURCE = MEDIA / "photos" / "biden" / "fr_biden.jpg"
STAGES = ("decode", "track", "align", "swap", "paste", "encode")


def deepfakes_default():
    """The DeepFakes method as conf/method/deepfakes.yaml builds it at the default data size (untrained)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from faceswaplab.config import compose, config_dir

    cfg = OmegaConf.load(config_dir() / "method" / "deepfakes.yaml")
    size = compose("train", ["data=synthetic"]).data.image_size  # the data configs extend data/base/
    cfg.image_size = size
    return instantiate(cfg).eval(), size


def one_run(name: str, frames: int, threads: int, video: dict, out: Path) -> dict:
    """Convert once in this process; frames/s wall and CPU, and seconds per stage when the code records them."""
    import cv2
    import torch

    from faceswaplab.swapping import swap_media

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    if name == "landmark_warp":
        kwargs, size = {"method": "landmark_warp", "source": str(SOURCE)}, 256
    else:
        method, size = deepfakes_default()
        kwargs = {"method": method}
    first: list[tuple[int, float]] = []  # (frames done, time) when the first batch had been swapped

    def on_progress(done: int, total: int) -> None:
        if not first:
            first.append((done, time.perf_counter()))

    wall0, cpu0 = time.perf_counter(), time.process_time()
    summary = swap_media(VIDEO, out, video={"max_frames": frames, **video}, progress=False, device="cpu",
                         on_progress=on_progress, **kwargs)
    end = time.perf_counter()
    wall, cpu = end - wall0, time.process_time() - cpu0
    # After the start-up (imports, face models, the first whole-frame detection and batch): the rate a longer
    # video converges to. The first progress call comes after the first frame of the first batch is swapped.
    done, t_first = first[0]
    steady = (summary.frames - done) / (end - t_first)
    stages = getattr(summary, "stages", None)
    return {"crop": size, "frames": summary.frames, "faces": summary.faces, "fps_wall": summary.frames / wall,
            "fps_cpu": summary.frames / cpu, "fps_steady": steady, "startup_s": t_first - wall0,
            "threads": torch.get_num_threads(),
            "stages": dict(stages.seconds) if stages is not None else {}}


def spawn(src: Path, name: str, frames: int, threads: int, video: dict, tmp: Path) -> dict:
    """:func:`one_run` in a fresh process importing faceswaplab from `src`."""
    out = tmp / f"{name}_{threads}_{time.monotonic_ns()}.mp4"
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import swap_speed; "
            f"print(json.dumps(swap_speed.one_run({name!r}, {frames}, {threads}, {video!r}, "
            f"__import__('pathlib').Path({str(out)!r}))))")
    env = {**os.environ, "PYTHONPATH": str(src)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        sys.exit(f"run failed ({name}, {threads} threads, {src}):\n{res.stderr[-3000:]}")
    out.unlink(missing_ok=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def baseline_tree(rev: str, tmp: Path) -> Path:
    """The `src/` and `conf/` of commit `rev`, extracted under `tmp`; returns its `src`."""
    dest = tmp / "baseline"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src", "conf"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=180)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch and OpenCV threads (each)")
    ap.add_argument("--methods", nargs="+", default=["landmark_warp", "deepfakes"])
    ap.add_argument("--repeats", type=int, default=2, help="old/new pairs per method and thread count")
    ap.add_argument("--baseline", default="8e3ea88", help="commit of the previous video path")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = ap.parse_args(argv)
    if not VIDEO.is_file():
        sys.exit(f"benchmark video not found: {VIDEO} (set FACESWAPLAB_MEDIA)")

    variants = {"old": {}, "new": {}, "new, one thread": {"workers": 0}, "new, x264 fast": {"preset": "fast"}}
    results: dict[tuple, list[dict]] = {}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {v: ROOT / "src" for v in variants} | {"old": baseline_tree(args.baseline, tmp)}
        for threads in args.threads:
            for name in args.methods:
                for _ in range(args.repeats):
                    for variant, video in variants.items():  # alternating: old, new, old, new ...
                        r = spawn(trees[variant], name, args.frames, threads, video, tmp)
                        results.setdefault((name, threads, variant), []).append(r)
                        print(name, threads, variant, f"{r['fps_wall']:.2f} frames/s,",
                              f"{r['fps_steady']:.2f} after start-up", flush=True)
    load1 = os.getloadavg()[0]

    def median(rows, key):
        return statistics.median(r[key] for r in rows)

    lines = [
        "# Swap speed (720p video, one face, CPU)",
        "",
        f"`python benchmarks/swap_speed.py {' '.join(argv if argv is not None else sys.argv[1:])}`".replace(" `", "`")
        + f" on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPU cores, no GPU; "
        f"load average {load0:.1f} at the start, {load1:.1f} at the end. Input: the first {args.frames} frames of "
        "`videos/lp_s32_woman_interview.mp4` (1280x720, 30 fps, with audio; the face is about 230 px wide), end to "
        "end (decode, detect or track, align, swap, mask, colour, seamless blend, encode, mux with audio). "
        f"old: commit {args.baseline}; new: this tree with `conf/swap.yaml`'s defaults; medians of {args.repeats} "
        "runs each, old and new alternating; `torch.get_num_threads()` as listed.",
        "",
        "| method | crop px | torch threads | path | frames | faces swapped | frames/s (wall) | frames/s (CPU) "
        "| new / old (wall) | start-up s | frames/s after start-up |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, threads, variant), rows in results.items():
        old = median(results[(name, threads, "old")], "fps_wall")
        ratio = "" if variant == "old" else f"{median(rows, 'fps_wall') / old:.2f}"
        r = rows[0]
        lines.append(f"| {name} | {r['crop']} | {r['threads']} | {variant} | {r['frames']} | {r['faces']} | "
                     f"{median(rows, 'fps_wall'):.2f} | {median(rows, 'fps_cpu'):.2f} | {ratio} | "
                     f"{median(rows, 'startup_s'):.1f} | {median(rows, 'fps_steady'):.2f} |")
    lines += [
        "",
        "Time per stage of the new path, ms per frame (median over the runs; with threads the stages overlap, so "
        "they add up to more than the wall time per frame; track = refit or detect + landmarks):",
        "",
        "| method | torch threads | path | " + " | ".join(STAGES) + " | wall per frame |",
        "|---|---:|---|" + "---:|" * (len(STAGES) + 1),
    ]
    for (name, threads, variant), rows in results.items():
        if variant == "old":
            continue
        ms = [statistics.median(1000 * r["stages"].get(s, 0.0) / r["frames"] for r in rows) for s in STAGES]
        lines.append(f"| {name} | {threads} | {variant} | " + " | ".join(f"{m:.1f}" for m in ms)
                     + f" | {1000 / median(rows, 'fps_wall'):.1f} |")
    lines += [
        "",
        "The whole frame is searched every `video.redetect_every`-th frame (30). In between the old path searched "
        "a region of three face widths around the last face with the detector (about 47 ms at 720p); the new one "
        "refits the 68-point shape predictor in the box carried from the last frame (about a millisecond), checked "
        "by motion, size and grey-patch correlation (`benchmarks/landmark_tracking.md` compares its landmarks with "
        "per-frame detection); \"track\" includes those whole-frame searches (about 340 ms each, 11 ms per frame). "
        "frames/s (wall) include loading the method and the face models and the final mux; start-up is the time "
        "until the first frame is swapped (imports, face models, the first whole-frame detection, the first batch), "
        "and frames/s after start-up counts the remaining frames from then to the end (final mux included): the "
        "rate a longer video approaches. \"x264 fast\" encodes with the previous default preset. The load averages "
        "above say "
        "how busy the cores were: on a busy machine the absolute frames/s drop, and the new / old ratio of "
        "alternating runs is the figure to compare.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    from faceswaplab.io import write_text

    write_text(args.out, text)


if __name__ == "__main__":
    main()
