"""Video reading and writing with PyAV for the swap command: segment encoding, concatenation, audio remux.

A converted video is written as numbered segments of N frames (:class:`SegmentWriter`, each an H.264 MP4 whose
timestamps start at 0, plus its offset in the source's time base), then joined by copying their packets into one
container together with the source's audio packets (:func:`mux`). Segments are independent files, so a long
conversion that is interrupted keeps every finished segment and continues from the next one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

log = logging.getLogger(__name__)

VIDEO_OUTPUT_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")


@dataclass(frozen=True)
class VideoInfo:
    """What the writer needs to keep from the source: size, rate, time base, frame count, audio."""

    width: int
    height: int
    rate: Fraction  # average frame rate
    time_base: Fraction  # of the video stream
    frames: int  # from the container header (0 when unknown)
    start_pts: int  # first frame's presentation time stamp
    has_audio: bool
    audio_codec: str | None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's header; raises ValueError for files without a video stream."""
    import av

    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    with av.open(str(path)) as c:
        if not c.streams.video:
            raise ValueError(f"{path}: no video stream")
        s = c.streams.video[0]
        rate = s.average_rate or s.guessed_rate or Fraction(25)
        tb = s.time_base or Fraction(1, 1) / rate
        audio = c.streams.audio[0] if c.streams.audio else None
        return VideoInfo(
            width=s.codec_context.width, height=s.codec_context.height, rate=Fraction(rate), time_base=Fraction(tb),
            frames=int(s.frames or 0), start_pts=int(s.start_time or 0), has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )


def iter_frames(path: str | os.PathLike) -> Iterator[tuple[int, int | None, np.ndarray]]:
    """Decode every frame: ``(index, pts in the stream's time base or None, (H, W, 3) uint8 RGB)``."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for index, frame in enumerate(c.decode(s)):
            yield index, frame.pts, frame.to_ndarray(format="rgb24")


def prefetch(items: Iterator, size: int) -> Iterator:
    """Run the iterator `items` in a background thread, at most `size` items ahead of the consumer.

    Items come out in order; an exception raised by `items` is raised here at its place in the sequence. When
    the consumer stops early (break, an exception, close), the thread stops and closes `items`.
    """
    q: queue.Queue = queue.Queue(max(size, 1))
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            put((end, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()


class SegmentWriter:
    """Encode frames into one segment file (H.264 MP4; timestamps relative to the segment's first frame).

    Odd widths or heights cannot be stored as 4:2:0; such videos are encoded 4:4:4 (same resolution, though
    some hardware players cannot play High 4:4:4).
    """

    def __init__(self, path: str | os.PathLike, info: VideoInfo, codec: str = "libx264", crf: int = 18,
                 preset: str = "veryfast"):
        import av

        self.path = Path(path)
        self.info = info
        self.container = av.open(str(self.path), "w", format="mp4")
        codec = codec if codec in av.codecs_available else "mpeg4"
        self.stream = self.container.add_stream(codec, rate=info.rate)
        self.stream.width, self.stream.height = info.width, info.height
        odd = info.width % 2 or info.height % 2
        self.stream.pix_fmt = "yuv444p" if odd and codec == "libx264" else "yuv420p"
        self.stream.time_base = info.time_base
        self.stream.codec_context.time_base = info.time_base
        if codec == "libx264":
            self.stream.options = {"crf": str(crf), "preset": preset}
        else:
            self.stream.bit_rate = max(2_000_000, info.width * info.height * 8)
        self.first_pts: int | None = None
        self._next_pts = 0

    def write(self, image: np.ndarray, pts: int | None) -> None:
        """Encode one (H, W, 3) uint8 RGB frame shown at `pts` (source time base; None: right after the last)."""
        import av

        if self.first_pts is None:
            self.first_pts = pts if pts is not None else 0
        rel = (pts - self.first_pts) if pts is not None else self._next_pts
        rel = max(rel, self._next_pts)  # strictly increasing, even for broken source timestamps
        self._next_pts = rel + 1
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = rel, self.info.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def mux(segments: list[tuple[str | os.PathLike, int]], source: str | os.PathLike, output: str | os.PathLike,
        metadata: dict[str, str] | None = None, end_time: float | None = None, fmt: str | None = None) -> bool:
    """Join encoded segments ``(path, pts offset)`` into `output` with the audio of `source`.

    Video packets are copied (shifted by their segment's offset); the first audio stream of `source` is copied
    too, or re-encoded to AAC when the output container cannot hold its codec. Audio after `end_time` seconds
    (the end of the video, when only part of it was converted) is dropped. Returns whether audio was written.
    """
    import av

    first = av.open(str(segments[0][0]))
    out = av.open(str(output), "w", format=fmt)
    try:
        vout = out.add_stream_from_template(first.streams.video[0])
        vout.time_base = first.streams.video[0].time_base
        src = av.open(str(source))
        try:
            ain = src.streams.audio[0] if src.streams.audio else None
            audio_mode, aout = _audio_stream(out, ain)
            for key, value in (metadata or {}).items():
                out.metadata[key] = value
            dts = _decode_timestamps(segments)
            i = 0
            for path, offset in segments:
                with av.open(str(path)) as seg:
                    for p in seg.demux(seg.streams.video[0]):
                        if p.size == 0:
                            continue
                        p.pts, p.dts = p.pts + int(offset), dts[i]
                        i += 1
                        p.stream = vout
                        out.mux(p)
            if ain is not None:
                _copy_audio(src, ain, out, aout, audio_mode, end_time)
        finally:
            src.close()
    finally:
        first.close()
        out.close()
    return ain is not None


MP4_AUDIO = ("aac", "mp3", "alac", "ac3", "eac3", "opus", "flac")


def _decode_timestamps(segments: list[tuple[str | os.PathLike, int]]) -> list[int]:
    """Decode time stamps for the packets of all segments, in decode order.

    Each segment's encoder chose its own reordering delay (a short last segment may use fewer B-frames), so
    its dts do not continue the previous segment's. With P the presentation times of all frames in order and D
    the largest reordering delay, packet i gets ``P[i - D]``: increasing, never after its own pts, and spaced
    like the frames (so the container's frame durations and rate stay exact).
    """
    import av

    pts = []  # in decode order, shifted to the source's time line
    for path, offset in segments:
        with av.open(str(path)) as seg:
            pts += [p.pts + int(offset) for p in seg.demux(seg.streams.video[0]) if p.size]
    order = sorted(pts)
    rank = {t: r for r, t in enumerate(order)}
    delay = max(0, max(i - rank[t] for i, t in enumerate(pts)))
    step = order[1] - order[0] if len(order) > 1 else 1
    return [order[i - delay] if i >= delay else order[0] - (delay - i) * step for i in range(len(pts))]


def _audio_stream(out, ain):
    """The output audio stream: a packet copy of `ain` if the container takes its codec, else AAC."""
    if ain is None:
        return None, None
    name = ain.codec_context.name
    if out.format.name in ("mp4", "mov", "ipod") and name not in MP4_AUDIO and not name.startswith("pcm_"):
        log.info("re-encoding %s audio to AAC for %s", name, out.format.name)
    elif out.format.name == "mp4" and name.startswith("pcm_"):
        log.info("re-encoding %s audio to AAC (MP4 does not hold PCM)", name)
    else:
        try:
            return "copy", out.add_stream_from_template(ain)
        except (ValueError, TypeError, av_error()) as e:
            log.info("re-encoding the audio to AAC (copying %s failed: %s)", name, e)
    return "aac", out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)


def av_error():
    import av

    return av.FFmpegError


def _copy_audio(src, ain, out, aout, mode: str, end_time: float | None) -> None:
    if mode == "copy":
        for p in src.demux(ain):
            if p.size == 0 or p.dts is None:
                continue
            if end_time is not None and p.pts is not None and float(p.pts * p.time_base) >= end_time:
                break
            p.stream = aout
            out.mux(p)
        return
    for frame in src.decode(ain):
        if end_time is not None and frame.time is not None and frame.time >= end_time:
            break
        frame.pts = None
        for p in aout.encode(frame):
            out.mux(p)
    for p in aout.encode():
        out.mux(p)
