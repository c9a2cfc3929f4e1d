"""Swapping a video in resumable segments (see :mod:`faceswaplab.swapping`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from faceswaplab.faces.tracking import FaceTracker
from faceswaplab.io import atomic_path, write_json
from faceswaplab.swapping.images import provenance_of, sign
from faceswaplab.swapping.options import NoFaceError, SwapError, SwapOptions, SwapSummary
from faceswaplab.swapping.swapper import FaceSwapper

log = logging.getLogger("faceswaplab.swap")


def _settings_key(swapper: FaceSwapper, opts: SwapOptions, src: Path) -> str:
    """A fingerprint of everything that changes a video's frames: resuming is allowed only when it matches."""
    st = src.stat()
    ckpt = swapper.checkpoint
    record = {
        "input": [str(src.resolve()), st.st_size, st.st_mtime_ns],
        "checkpoint": [str(ckpt), ckpt.stat().st_size, ckpt.stat().st_mtime_ns] if ckpt else None,
        "method": swapper.name,
        "hparams": {k: str(v) for k, v in dict(getattr(swapper.method, "hparams", {})).items()},
        # Field by field: asdict would deep-copy a backend instance.
        "options": {f.name: _plain(getattr(opts, f.name)) for f in dataclasses.fields(opts)
                    if f.name not in ("overwrite", "progress", "c2pa")},
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _decoded(src: Path, frames):
    """Pass the decoder's frames through, turning its failures into a SwapError naming the file and frame."""
    index = -1
    while True:
        try:
            item = next(frames)
        except StopIteration:
            return
        except Exception as e:  # noqa: BLE001 - PyAV raises many kinds for corrupt data
            where = "at the start" if index < 0 else f"after frame {index}"
            raise SwapError(f"{src}: video decoding failed {where} ({type(e).__name__}: {e}); the finished "
                            "segments are kept") from None
        index = item[0]
        yield item


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value if isinstance(
        value, (str, int, float, bool, type(None), dict, list)) else repr(value)


def swap_video(swapper: FaceSwapper, src: Path, dst: Path, summary: SwapSummary,
                on_progress: Callable[[int, int], None] | None = None) -> None:
    from tqdm import tqdm

    from faceswaplab.provenance import video_metadata
    from faceswaplab.video import VIDEO_OUTPUT_SUFFIXES, SegmentWriter, iter_frames, mux, probe

    opts = swapper.opts
    try:
        info = probe(src)
    except Exception as e:  # noqa: BLE001 - PyAV raises many kinds for broken files
        raise SwapError(f"{src}: not a readable video ({e})") from None
    if dst.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
        raise SwapError(f"{dst}: videos are written as {', '.join(VIDEO_OUTPUT_SUFFIXES)}")
    parts = dst.with_name(dst.name + ".parts")
    progress_path = parts / "progress.json"
    key = _settings_key(swapper, opts, src)
    progress = {"settings": key, "segments": []}
    if progress_path.is_file():
        old = json.loads(progress_path.read_text())
        if old.get("settings") == key:
            progress = old
        elif not opts.overwrite:
            raise SwapError(f"{parts} holds an unfinished conversion with other settings or input; "
                            "delete it or pass overwrite=true")
        else:
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    for stale in parts.glob(".seg_*"):  # a segment cut short by a kill
        stale.unlink()
    done = progress["segments"]
    start = sum(s["frames"] for s in done)
    summary.resumed_segments += len(done)
    if done:
        log.info("%s: continuing after %d finished segments (%d frames)", dst, len(done), start)

    total = info.frames or 0
    if opts.video.max_frames:
        total = min(total, opts.video.max_frames) if total else opts.video.max_frames
    tracker = FaceTracker(opts.smoothing)
    if done:
        tracker.load(done[-1]["tracker"])
    dt = 1.0 / float(info.rate)
    bar = tqdm(total=total or None, initial=start, unit="frame", desc=src.name, disable=not opts.progress,
               dynamic_ncols=True)
    writer = None
    seg = {"frames": 0, "faces": 0, "no_face": 0}
    last_pts = None
    frames_seen = start

    def commit() -> None:
        nonlocal writer, seg
        writer.close()
        k = len(done)
        name = f"seg_{k:05d}.mp4"
        os.replace(writer.path, parts / name)
        done.append({"file": name, "offset": writer.first_pts, **seg, "tracker": tracker.state()})
        write_json(progress_path, progress)
        writer, seg = None, {"frames": 0, "faces": 0, "no_face": 0}

    try:
        for index, pts, frame in _decoded(src, iter_frames(src)):
            if opts.video.max_frames and index >= opts.video.max_frames:
                break
            last_pts = pts
            if index < start:
                continue
            if writer is None:
                writer = SegmentWriter(parts / f".seg_{len(done):05d}.mp4", info, opts.video.codec,
                                       opts.video.crf, opts.video.preset)
            out, n = swapper(frame, tracker, dt, index=index)
            writer.write(out, pts)
            seg["frames"] += 1
            seg["faces"] += n
            seg["no_face"] += n == 0
            frames_seen = index + 1
            bar.update(1)
            if seg["frames"] >= opts.video.segment_frames:
                commit()
            if on_progress is not None:
                on_progress(frames_seen, total)
        if writer is not None:
            commit()
    except BaseException:
        if writer is not None:
            try:
                writer.container.close()
            except Exception:  # noqa: BLE001 - already failing; the stale segment is removed on the next run
                pass
            Path(writer.path).unlink(missing_ok=True)
        raise
    finally:
        bar.close()

    frames = sum(s["frames"] for s in done)
    faces = sum(s["faces"] for s in done)
    no_face = sum(s["no_face"] for s in done)
    summary.frames_without_face += no_face
    if frames == 0:
        shutil.rmtree(parts, ignore_errors=True)
        raise SwapError(f"{src}: no decodable video frames")
    if faces == 0:
        shutil.rmtree(parts, ignore_errors=True)
        raise NoFaceError(f"no face to swap in any of the {frames} frames of {src}; nothing written")
    if no_face:
        log.info("%s: %d of %d frames had no face and were copied unchanged", src, no_face, frames)

    end_time = None
    if opts.video.max_frames and last_pts is not None:
        end_time = float(last_pts * info.time_base) + dt  # cut the audio where the converted video ends
    info_label = provenance_of(swapper, opts)
    metadata = video_metadata(info_label) if info_label else {}
    segments = [(parts / s["file"], s["offset"]) for s in done]
    with atomic_path(dst) as tmp:
        mux(segments, src, tmp, metadata=metadata, end_time=end_time)
        if opts.c2pa.enabled and info_label is not None:
            sign(tmp, info_label, opts.c2pa)
    shutil.rmtree(parts, ignore_errors=True)
    summary.frames += frames  # all of the video's frames, as its faces count those of resumed segments too
    summary.faces += faces
    summary.videos += 1
    summary.outputs.append(str(dst))
