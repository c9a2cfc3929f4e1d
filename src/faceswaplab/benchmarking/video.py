"""The video protocol: swapped clips scored against their target clip for temporal stability.

    python -m faceswaplab.benchmarking.video --target clip.mp4 --swapped warp=warp.mp4 raw=raw.mp4 \
        [--source photo.jpg] [--embedder dlib] [--max-frames 90] [--out results/video.md]

Every clip, the target's included (the reference row: what real motion and lighting give), goes through the same
path: dlib detects the face and its 68 landmarks in every frame (the largest face), then
:mod:`faceswaplab.metrics.temporal` measures landmark jitter, skin-colour flicker and identity stability, and the
identity embedder the similarity to the source photo. ``jitter_excess`` and ``flicker_excess`` are a clip's values
minus the target's: 0 is as steady as the real clip. Frames without a detected face are counted, never dropped from
the denominator of ``face_detected``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from faceswaplab.io import write_text
from faceswaplab.metrics.temporal import colour_flicker, identity_stability, landmark_jitter


def clip_landmarks(frames: list[np.ndarray], backend) -> np.ndarray:
    """(T, 68, 2) landmarks of the largest face of each frame; NaN where none is found."""
    from faceswaplab.faces.pipeline import find_faces

    out = np.full((len(frames), 68, 2), np.nan)
    for i, frame in enumerate(frames):
        faces = find_faces(backend, frame)
        if faces:
            out[i] = max(faces, key=lambda f: f.area).landmarks
    return out


def read_clip(path: str | Path, max_frames: int | None = None) -> list[np.ndarray]:
    """The frames of a video as (H, W, 3) uint8 RGB arrays (the first `max_frames`)."""
    from faceswaplab.video import iter_frames

    frames = []
    for i, _, frame in iter_frames(path):
        if max_frames is not None and i >= max_frames:
            break
        frames.append(frame)
    return frames


def _embed(embedder, frames, landmarks) -> torch.Tensor:
    """(T, D) embeddings of the frames' faces; NaN rows where a frame has no landmarks."""
    out = torch.full((len(frames), 0), math.nan)
    ok = [i for i in range(len(frames)) if np.isfinite(landmarks[i]).all()]
    if ok:
        images = torch.stack([torch.from_numpy(frames[i].copy()).permute(2, 0, 1).float() / 127.5 - 1 for i in ok])
        emb = embedder.embed(images, landmarks[ok]).double()
        out = torch.full((len(frames), emb.shape[1]), math.nan, dtype=torch.float64)
        out[ok] = emb
    return out


def score_clip(frames, landmarks, embedder=None, source_embedding=None) -> dict:
    """The temporal metrics of one clip (see the module docstring)."""
    found = np.isfinite(landmarks).all(axis=(1, 2))
    jitter, jn = landmark_jitter(landmarks)
    flicker, fn = colour_flicker(frames, landmarks)
    row = {"frames": len(frames), "face_detected": float(found.mean()) if len(frames) else math.nan,
           "jitter": jitter, "jitter_frames": jn, "flicker": flicker, "flicker_pairs": fn}
    if embedder is not None:
        emb = _embed(embedder, frames, landmarks)
        row["identity_stability"], _ = identity_stability(emb) if emb.shape[1] else (math.nan, 0)
        if source_embedding is not None and emb.shape[1]:
            cos = torch.nn.functional.cosine_similarity(emb, source_embedding.double()[None], dim=1)
            row["identity_to_source"] = float(cos[torch.isfinite(cos)].mean()) if torch.isfinite(cos).any() \
                else math.nan
    return row


def video_protocol(target: str | Path, swapped: dict[str, str | Path], source: str | Path | None = None,
                   embedder: str | None = "dlib", max_frames: int | None = None, backend: str = "dlib") -> list[dict]:
    """One row per clip, the target first: its temporal metrics and, for swapped clips, the excess over the target's
    jitter and flicker. Every clip is cut to the same number of frames as the target."""
    from faceswaplab.faces.pipeline import largest_face, make_backend
    from faceswaplab.metrics.embedders import build_embedder

    faces = make_backend(backend)
    emb = build_embedder(embedder) if embedder else None
    source_embedding = None
    if emb is not None and source is not None:
        image, face = largest_face(faces, source)
        source_embedding = _embed(emb, [image], face.landmarks[None])[0]
    rows = []
    clips = {"target": target, **swapped}
    t_frames = None
    for name, path in clips.items():
        frames = read_clip(path, max_frames if t_frames is None else t_frames)
        t_frames = t_frames or len(frames)
        lm = clip_landmarks(frames, faces)
        rows.append({"clip": name, "path": str(path), **score_clip(frames, lm, emb, source_embedding)})
    ref = rows[0]
    for r in rows:
        r["jitter_excess"] = r["jitter"] - ref["jitter"]
        r["flicker_excess"] = r["flicker"] - ref["flicker"]
    return rows


COLUMNS = ("frames", "face_detected", "jitter", "jitter_excess", "flicker", "flicker_excess", "identity_stability",
           "identity_to_source")


def markdown(rows: list[dict], command: str) -> str:
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    lines = ["# Video protocol", "", f"- command: `{command}`",
             f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}", "",
             "jitter: landmark acceleration per point in inter-ocular distances; flicker: CIELAB distance between "
             "consecutive frames' median skin colours; *_excess: minus the target clip's (0: as steady as the real "
             "clip); identity_stability: mean cosine of each frame's embedding to the clip's mean; "
             "identity_to_source: mean cosine to the source photo.", "",
             "| clip | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        cells = [f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, "-")) for c in cols]
        lines.append(f"| {r['clip']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="the target clip the swaps were made from")
    ap.add_argument("--swapped", nargs="+", required=True, help="NAME=PATH of each swapped clip")
    ap.add_argument("--source", default=None, help="the source identity photo (identity_to_source)")
    ap.add_argument("--embedder", default="dlib", help="identity embedder (none: skip identity)")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--out", default=None, help="write the Markdown table here (and .jsonl beside it)")
    args = ap.parse_args(argv)
    swapped = {}
    for item in args.swapped:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            ap.error(f"--swapped {item}: give NAME=PATH of an existing video")
        swapped[name] = path
    for path in (args.target, args.source):
        if path is not None and not Path(path).is_file():
            ap.error(f"{path}: no such file")
    rows = video_protocol(args.target, swapped, args.source, None if args.embedder == "none" else args.embedder,
                          args.max_frames)
    command = "python -m faceswaplab.benchmarking.video " + shlex.join(sys.argv[1:] if argv is None else argv)
    text = markdown(rows, command)
    print(text)
    if args.out:
        write_text(args.out, text)
        write_text(Path(args.out).with_suffix(".jsonl"), "".join(json.dumps(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
