"""The landmark warp on 720p video with the paste's blend seamless (the default) or feathered: frames/s, and how
much the outputs differ.

    python benchmarks/paste_blend.py [--frames 90] [--rounds 2] [--threads 2]

The warp blends its face into the aligned crop itself (Poisson), and pasting the crop back into the frame blends
again (``blend=seamless``); ``blend=feather`` pastes with the feathered alpha alone. Each run is a fresh process
converting the first `--frames` frames of the interview clip of ``swap_speed.py`` (same source photo), the two
settings alternating. Prints frames/s per run and the mean absolute difference between the two outputs over the
pixels the swap changed (grey levels, 0-255).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RUN = """
import json, sys, time, torch, cv2
sys.path.insert(0, {here!r})
import swap_speed
from faceswaplab.swapping import swap_media
torch.set_num_threads({threads}); cv2.setNumThreads({threads})
t = time.perf_counter()
s = swap_media(swap_speed.VIDEO, sys.argv[2], method="landmark_warp", source=str(swap_speed.SOURCE),
               video={{"max_frames": {frames}}}, progress=False, device="cpu", blend=sys.argv[1], overwrite=True)
print(json.dumps({{"fps": s.frames / (time.perf_counter() - t)}}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import imageio.v3 as iio

    sys.path.insert(0, str(HERE))
    import swap_speed

    code = RUN.format(here=str(HERE), threads=args.threads, frames=args.frames)
    fps: dict[str, list[float]] = {"seamless": [], "feather": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for blend in fps:
                out = Path(tmp) / f"{blend}.mp4"
                res = subprocess.run([sys.executable, "-c", code, blend, str(out)], capture_output=True, text=True)
                if res.returncode:
                    sys.exit(res.stderr[-3000:])
                fps[blend].append(json.loads(res.stdout.strip().splitlines()[-1])["fps"])
        a, b = (iio.imread(Path(tmp) / f"{k}.mp4", plugin="pyav").astype(np.int16) for k in fps)
    src = iio.imread(swap_speed.VIDEO, plugin="pyav")[: len(a)].astype(np.int16)
    changed = np.abs(a - src).max(-1) > 8  # the swapped face, above the codec's noise
    diff = np.abs(a - b).mean(-1)[changed]
    for blend, vals in fps.items():
        print(f"{blend}: {', '.join(f'{v:.2f}' for v in vals)} frames/s")
    print(f"|seamless - feather| over the {changed.sum() / len(a):.0f} changed pixels a frame: mean {diff.mean():.1f}, "
          f"95th percentile {np.percentile(diff, 95):.1f} grey levels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
