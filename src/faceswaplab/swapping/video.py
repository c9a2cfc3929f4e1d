"""Swapping a video in resumable segments (see :mod:`faceswaplab.swapping`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import queue
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from faceswaplab.faces.tracking import FaceTracker
from faceswaplab.io import atomic_path, write_json
from faceswaplab.swapping.images import provenance_of, sign
from faceswaplab.swapping.options import NoFaceError, StageTimes, SwapError, SwapOptions, SwapSummary
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
    record["options"]["video"].pop("workers")  # threads change the speed, not the frames
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


def _timed(items, times: StageTimes, stage: str):
    """Pass `items` through, adding the time spent producing each to `stage`."""
    while True:
        with times(stage):
            item = next(items, _timed)
        if item is _timed:
            return
        yield item


class _Segments:
    """Encodes the swapped frames, in order, into the resumable segments of ``<output>.parts/`` and records each
    finished one in ``progress.json`` (with the tracker's state after its last frame).

    With `threaded`, frames are encoded in a thread of its own, behind a bounded queue: :meth:`put` hands over a
    frame (or a future of one, still being pasted) and returns at once unless the queue is full. :meth:`close`
    encodes what was handed over; with `keep_partial` False (the run failed) the unfinished segment is deleted.
    """

    def __init__(self, parts: Path, progress: dict, info, opts, times: StageTimes, threaded: bool):
        self.parts, self.progress, self.info, self.opts, self.times = parts, progress, info, opts, times
        self.done = progress["segments"]
        self.writer = None
        self.seg = {"frames": 0, "faces": 0, "no_face": 0}
        self.error: BaseException | None = None
        self.queue: queue.Queue | None = queue.Queue(max(2 * opts.batch_size, 4)) if threaded else None
        self.thread = None
        if threaded:
            self.thread = threading.Thread(target=self._work, name="encode", daemon=True)
            self.thread.start()

    def put(self, frame, pts, faces: int, state: list | None) -> None:
        """Encode `frame` (an array or a future of one) shown at `pts` with `faces` swapped; `state`: the tracker's
        state when the frame is the last of its segment, else None."""
        item = (frame, pts, faces, state)
        if self.queue is None:
            return self._write(*item)
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=0.05)
                return
            except queue.Full:
                pass

    def close(self, state: list, keep_partial: bool = True) -> None:
        """Encode everything handed over; the unfinished segment is committed with `state` if `keep_partial`,
        else deleted. Raises what failed in the encoding thread."""
        try:
            if self.thread is not None:
                while self.thread.is_alive():
                    try:
                        self.queue.put(None, timeout=0.05)
                        break
                    except queue.Full:
                        pass
                self.thread.join()
                if self.error is not None and keep_partial:  # else the run is failing already
                    raise self.error
            if self.writer is not None and keep_partial:
                self._commit(state)
        finally:
            if self.writer is not None:  # a segment cut short: removed (a kill leaves it to the next run)
                try:
                    self.writer.container.close()
                except Exception:  # noqa: BLE001 - already failing
                    pass
                Path(self.writer.path).unlink(missing_ok=True)
                self.writer = None

    def _work(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                self._write(*item)
        except BaseException as e:  # noqa: BLE001 - raised in the swapping thread by put / close
            self.error = e

    def _write(self, frame, pts, faces: int, state: list | None) -> None:
        from faceswaplab.video import SegmentWriter

        if isinstance(frame, Future):
            frame = frame.result()
        if self.writer is None:
            v = self.opts
            self.writer = SegmentWriter(self.parts / f".seg_{len(self.done):05d}.mp4", self.info, v.codec, v.crf,
                                        v.preset)
        with self.times("encode"):
            self.writer.write(frame, pts)
        self.seg["frames"] += 1
        self.seg["faces"] += faces
        self.seg["no_face"] += faces == 0
        if state is not None:
            self._commit(state)

    def _commit(self, state: list) -> None:
        with self.times("encode"):
            self.writer.close()
        name = f"seg_{len(self.done):05d}.mp4"
        os.replace(self.writer.path, self.parts / name)
        self.done.append({"file": name, "offset": self.writer.first_pts, **self.seg, "tracker": state})
        write_json(self.parts / "progress.json", self.progress)
        self.writer, self.seg = None, {"frames": 0, "faces": 0, "no_face": 0}


def _done_future(value) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f


def swap_video(swapper: FaceSwapper, src: Path, dst: Path, summary: SwapSummary,
                on_progress: Callable[[int, int], None] | None = None) -> None:
    """Swap the faces of the video `src` into `dst` in resumable segments (see :mod:`faceswaplab.swapping`).

    Frames are located one by one (tracked faces), their faces swapped ``video.batch_size`` frames at a time in
    one call of the method, and pasted back by ``video.workers`` threads while the next frames are swapped;
    decoding and encoding then run in threads of their own. Frames come out in order and equal those of a run
    with batches of one and no threads.
    """
    from tqdm import tqdm

    from faceswaplab.provenance import video_metadata
    from faceswaplab.video import VIDEO_OUTPUT_SUFFIXES, iter_frames, mux, prefetch, probe

    opts = swapper.opts
    v = opts.video
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
    if v.max_frames:
        total = min(total, v.max_frames) if total else v.max_frames
    tracker = FaceTracker(opts.smoothing)
    if done:
        tracker.load(done[-1]["tracker"])
    dt = 1.0 / float(info.rate)
    bar = tqdm(total=total or None, initial=start, unit="frame", desc=src.name, disable=not opts.progress,
               dynamic_ncols=True)
    times = summary.stages
    threaded = v.workers > 0
    pool = ThreadPoolExecutor(v.workers, thread_name_prefix="paste") if threaded else None
    sink = _Segments(parts, progress, info, v, times, threaded)
    batch: list[tuple] = []  # (index, pts, frame, landmarks, tracker state at the end of a segment or None)
    last_pts = None

    def paste(frame, faces):
        with times("paste"):
            return swapper.paste(frame, faces)

    def flush() -> None:
        with times("align"):
            aligned = [swapper.align(frame, lms) for _, _, frame, lms, _ in batch]
        with times("swap"):
            swapped = swapper.swap_aligned(aligned)
        for (index, pts, frame, lms, state), faces in zip(batch, swapped):
            out = pool.submit(paste, frame, faces) if pool is not None else _done_future(paste(frame, faces))
            sink.put(out, pts, len(lms), state)
            bar.update(1)
            if on_progress is not None:
                on_progress(index + 1, total)
        batch.clear()

    decoded = _timed(_decoded(src, iter_frames(src)), times, "decode")
    frames = prefetch(decoded, 2 * v.batch_size) if threaded else decoded
    try:
        for index, pts, frame in frames:
            if v.max_frames and index >= v.max_frames:
                break
            last_pts = pts
            if index < start:
                continue
            with times("track"):
                landmarks = swapper.locate(frame, tracker, dt, index=index)
            # A segment ends after every segment_frames frames (all finished ones are full): its record keeps
            # the tracker's state there, so that a resumed run continues exactly as this one does.
            end = (index + 1 - start) % v.segment_frames == 0
            batch.append((index, pts, frame, landmarks, tracker.state() if end else None))
            if end or len(batch) >= v.batch_size:
                flush()
        if batch:
            flush()
        sink.close(tracker.state())
    except BaseException:
        # What was swapped is still encoded (a finished segment is kept); the unfinished one is deleted.
        sink.close(tracker.state(), keep_partial=False)
        raise
    finally:
        if hasattr(frames, "close"):
            frames.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
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
