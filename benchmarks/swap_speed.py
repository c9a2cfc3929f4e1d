"""Frames per second of ``faceswaplab.swap`` on a 720p video with one face, per method, on CPU.

    python benchmarks/swap_speed.py [--frames 90] [--threads 1 2] [--out benchmarks/swap_speed.md]

Converts the first `--frames` frames of ``../shared/media/videos/lp_s32_woman_interview.mp4`` (1280x720, 30 fps,
audio) end to end through :func:`faceswaplab.swapping.swap_media`: decode, dlib HOG detection and landmarks, the swap,
mask, colour transfer, blend, H.264 encode and the final mux with audio. Methods: the landmark-warp baseline
(source: a photo of ``photos/biden``) and the DeepFakes autoencoder of ``conf/method/deepfakes.yaml`` at its
default size, untrained (the speed of a trained one is the same), each with every `--threads` count. A second
table times stages alone: detection + landmarks over the whole frame and near the last face, and the H.264
encode. Wall-clock and process CPU time are both reported (CPU time is steadier on a busy machine). Writes
Markdown to `--out` (and prints it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESWAPLAB_MEDIA", ROOT.parent / "shared" / "media"))
VIDEO = MEDIA / "videos" / "lp_s32_woman_interview.mp4"
SOURCE = MEDIA / "photos" / "biden" / "fr_biden.jpg"


def deepfakes_default():
    """The DeepFakes method as conf/method/deepfakes.yaml builds it at the default data size (untrained)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from faceswaplab.config import compose, config_dir

    cfg = OmegaConf.load(config_dir() / "method" / "deepfakes.yaml")
    size = compose("train", ["data=synthetic"]).data.image_size  # the data configs extend data/base/
    cfg.image_size = size
    return instantiate(cfg).eval(), size


def run(name: str, frames: int, tmp: Path) -> dict:
    from faceswaplab.swapping import swap_media

    if name == "landmark_warp":
        kwargs = {"method": "landmark_warp", "source": str(SOURCE)}
        size = 256
    else:
        method, size = deepfakes_default()
        kwargs = {"method": method}
    out = tmp / f"{name}_{torch.get_num_threads()}.mp4"
    wall0, cpu0 = time.perf_counter(), time.process_time()
    summary = swap_media(VIDEO, out, video={"max_frames": frames}, progress=False, device="cpu", **kwargs)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"method": name, "crop": size, "frames": summary.frames, "faces": summary.faces,
            "fps_wall": summary.frames / wall, "fps_cpu": summary.frames / cpu}


def stage_times(frames: int, tmp: Path) -> dict:
    """ms per frame of the stages measured alone: detection + landmarks over the whole frame (dlib HOG, as on
    every `redetect_every`-th frame), the same near the previous face (the other frames), H.264 encoding."""
    from faceswaplab.faces.pipeline import find_faces, make_backend
    from faceswaplab.video import SegmentWriter, iter_frames, probe

    images = []
    for _, _, img in iter_frames(VIDEO):
        images.append(img)
        if len(images) == frames:
            break
    backend = make_backend("dlib")
    lm = find_faces(backend, images[0], 1024, None)[0].landmarks
    r = int(max(lm.max(0) - lm.min(0)))
    (x0, y0), (x1, y1) = lm.min(0).astype(int), lm.max(0).astype(int)
    near = [img[max(y0 - r, 0) : y1 + r, max(x0 - r, 0) : x1 + r] for img in images]
    writer = SegmentWriter(tmp / ".bench.mp4", probe(VIDEO))

    def encode_all():
        for img in images:
            writer.write(img, None)
        writer.close()

    steps = {
        "detect + landmarks, whole frame": lambda: [find_faces(backend, img, 1024, None) for img in images],
        "detect + landmarks, near the last face": lambda: [find_faces(backend, img, 320, None) for img in near],
        "H.264 encode (libx264, crf 18, fast)": encode_all,
    }
    out = {}
    for name, fn in steps.items():
        wall0, cpu0 = time.perf_counter(), time.process_time()
        fn()
        out[name] = (1000 * (time.perf_counter() - wall0) / frames, 1000 * (time.process_time() - cpu0) / frames)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch and OpenCV threads (each)")
    ap.add_argument("--methods", nargs="+", default=["landmark_warp", "deepfakes"])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = ap.parse_args(argv)
    if not VIDEO.is_file():
        sys.exit(f"benchmark video not found: {VIDEO} (set FACESWAPLAB_MEDIA)")
    import cv2

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
            rows += [run(m, args.frames, Path(tmp)) | {"threads": threads} for m in args.methods]
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        stages = stage_times(min(args.frames, 30), Path(tmp))

    load = os.getloadavg()[0]
    cmd = "python benchmarks/swap_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Swap speed (720p video, one face, CPU)",
        "",
        f"`{cmd.strip()}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPU cores, "
        f"no GPU, load average {load:.1f} at the end. Input: the first {args.frames} "
        f"frames of `videos/lp_s32_woman_interview.mp4` (1280x720, 30 fps, with audio; the face is about 230 px "
        "wide), end to end (decode, detect, swap, mask, colour, seamless blend, encode, mux with audio).",
        "",
        "| method | crop px | threads | frames | faces swapped | frames/s (wall) | frames/s (CPU time) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(f"| {r['method']} | {r['crop']} | {r['threads']} | {r['frames']} | {r['faces']} | {r['fps_wall']:.2f} | "
          f"{r['fps_cpu']:.2f} |" for r in rows),
        "",
        "Stages alone, per frame (one thread):",
        "",
        "| stage | ms (wall) | ms (CPU) |",
        "|---|---:|---:|",
        *(f"| {name} | {w:.0f} | {c:.0f} |" for name, (w, c) in stages.items()),
        "",
        "The whole frame is searched on every `video.redetect_every`-th frame (30) and whenever the face is lost;",
        "in between only a region of three face widths around the last face is, downscaled so the face is about",
        "100 px. On a busy machine torch's intra-op threads wait on each other and one thread can beat two; the",
        "load average above says which case the rows were measured in.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    from faceswaplab.io import write_text

    write_text(args.out, text)


if __name__ == "__main__":
    main()
