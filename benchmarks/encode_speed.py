"""H.264 encoding of 720p frames per x264 preset: ms per frame (wall and CPU), file size and PSNR against the frames.

    python benchmarks/encode_speed.py [--frames 90] [--presets fast veryfast superfast] [--crf 18] [--rounds 2]

Decodes the first `--frames` frames of ``../shared/media/videos/lp_s32_woman_interview.mp4`` (1280x720) once, then
encodes them with libx264 at `--crf` per preset, presets alternating in each round, as
:class:`faceswaplab.video.SegmentWriter` does for a swapped video (``video.preset`` of ``conf/swap.yaml``). PSNR
is measured against the decoded frames (which carry the source's own compression). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESWAPLAB_MEDIA", ROOT.parent / "shared" / "media"))
VIDEO = MEDIA / "videos" / "lp_s32_woman_interview.mp4"


def read(path: Path, n: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == n:
                break
    return frames


def encode(frames: list[np.ndarray], path: Path, preset: str, crf: int) -> tuple[float, float]:
    """Seconds of wall and CPU time to encode `frames` into `path`."""
    from faceswaplab.video import SegmentWriter, probe

    info = probe(VIDEO)
    wall, cpu = time.perf_counter(), time.process_time()
    writer = SegmentWriter(path, info, "libx264", crf, preset)
    for frame in frames:
        writer.write(frame, None)
    writer.close()
    return time.perf_counter() - wall, time.process_time() - cpu


def psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    mse = np.mean([np.mean((x.astype(np.float32) - y.astype(np.float32)) ** 2) for x, y in zip(a, b)])
    return float(10 * np.log10(255**2 / mse))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--presets", nargs="+", default=["fast", "veryfast", "superfast"])
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    if not VIDEO.is_file():
        sys.exit(f"benchmark video not found: {VIDEO} (set FACESWAPLAB_MEDIA)")
    frames = read(VIDEO, args.frames)
    times: dict[str, list[tuple[float, float]]] = {p: [] for p in args.presets}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for preset in args.presets:
                times[preset].append(encode(frames, Path(tmp) / f"{preset}.mp4", preset, args.crf))
        for preset in args.presets:
            out = Path(tmp) / f"{preset}.mp4"
            wall = statistics.median(t[0] for t in times[preset]) / len(frames) * 1000
            cpu = statistics.median(t[1] for t in times[preset]) / len(frames) * 1000
            rows.append(f"| {preset} | {wall:.1f} | {cpu:.1f} | {out.stat().st_size / 1024:.0f} | "
                        f"{psnr(frames, read(out, len(frames))):.2f} |")
    command = f"python benchmarks/encode_speed.py {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
    print(f"`{command}`; {len(frames)} frames of {VIDEO.name}, crf {args.crf}, medians of {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| x264 preset | ms per frame (wall) | ms per frame (CPU) | file KB | PSNR dB |\n|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
