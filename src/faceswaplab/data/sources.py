"""Inputs of the face pipeline: images and videos of one identity, or folders of many identities.

A source lists its files (:class:`SourceFile`: path, identity, output name) and enumerates :class:`Item` s, one
per still image or sampled video frame. Images are decoded only when an item is loaded; video frames are decoded
one by one as the iteration advances (PyAV), so neither ever sits in memory in full.

Layouts (see :func:`open_source`):

* one image or video file: identity = the file stem;
* a folder of images/videos of one identity, searched recursively: identity = the folder name;
* a folder of identity folders (CelebA-style ``root/<identity>/...``): identity = the sub-folder name,
  optionally restricted to and ordered by an identity list file (one name per line).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from faceswaplab.io import read_image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pnm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})


@dataclass(frozen=True)
class Item:
    """One image to process: a still image (`frame` None) or a decoded video frame.

    `name` is the output name stem (relative path without suffix, plus ``_f<frame>`` for frames). `error` is set
    instead of pixels when a video could not be decoded at this point.
    """

    source: Path
    frame: int | None
    identity: str
    name: str
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    error: str | None = None

    def load(self) -> np.ndarray:
        """The (H, W, 3) uint8 RGB pixels; raises `faceswaplab.io.ImageReadError` for a bad image file."""
        if self.image is not None:
            return self.image
        if self.frame is not None:
            for index, frame in iter_video_frames(self.source):
                if index == self.frame:
                    return frame
            raise IndexError(f"{self.source}: no frame {self.frame}")
        return read_image(self.source)


@dataclass(frozen=True)
class SourceFile:
    """One input file with its identity and output name stem (its path relative to the input root)."""

    path: Path
    identity: str
    name: str

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES

    def items(self, fps: float | None = None, max_frames: int | None = None) -> Iterator[Item]:
        """The items of this file: one for an image; sampled frames for a video (an error item if it breaks)."""
        if not self.is_video:
            yield Item(self.path, None, self.identity, self.name)
            return
        frame = None
        try:
            for frame, pixels in iter_video_frames(self.path, fps, max_frames):
                yield Item(self.path, frame, self.identity, f"{self.name}_f{frame:06d}", image=pixels)
        except Exception as e:  # noqa: BLE001 - any decoder failure becomes a report row, never a crash
            where = "no decodable video" if frame is None else f"decoding failed after frame {frame}"
            yield Item(self.path, None if frame is None else frame + 1, self.identity, self.name,
                       error=f"{where} ({type(e).__name__}: {e})")
            return
        if frame is None:
            yield Item(self.path, None, self.identity, self.name, error="video has no frames")


def iter_video_frames(
    path: str | os.PathLike, fps: float | None = None, max_frames: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video, yielding ``(frame index, (H, W, 3) uint8 RGB)``.

    With `fps`, frames are sampled at that rate (the first frame of each 1/fps interval of presentation time);
    `max_frames` stops after that many yielded frames. Raises PyAV errors for unreadable files.
    """
    import av

    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate) if stream.average_rate else 25.0
        last_bucket = -1
        count = 0
        for index, frame in enumerate(container.decode(stream)):
            if fps:
                t = frame.time if frame.time is not None else index / rate
                bucket = math.floor(t * fps + 1e-6)
                if bucket <= last_bucket:
                    continue
                last_bucket = bucket
            yield index, frame.to_ndarray(format="rgb24")
            count += 1
            if max_frames is not None and count >= max_frames:
                return


@functools.lru_cache(maxsize=256)
def video_fps(path: str | os.PathLike) -> float | None:
    """The frame rate of a video file (its stream's average rate), or None when it cannot be read."""
    try:
        import av

        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate if container.streams.video else None
    except Exception:  # noqa: BLE001 - a missing or unreadable file just has no known rate
        return None
    return float(rate) if rate else None


class Source:
    """A set of input files; iterate it for items. Subclasses define `files()`."""

    def __init__(self, root: str | os.PathLike, fps: float | None = None, max_frames: int | None = None):
        self.root = Path(root)
        self.fps = fps
        self.max_frames = max_frames

    def files(self) -> list[SourceFile]:
        raise NotImplementedError

    def identities(self) -> list[str]:
        """Identity names in order of first appearance."""
        return list(dict.fromkeys(f.identity for f in self.files()))

    def __iter__(self) -> Iterator[Item]:
        for f in self.files():
            yield from f.items(self.fps, self.max_frames)


def media_files(root: Path) -> list[Path]:
    """Image and video files under `root`, recursively, sorted, hidden files and folders skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if not fn.startswith(".") and Path(fn).suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                out.append(Path(dirpath) / fn)
    return sorted(out)


def _named(paths: list[Path], root: Path, identity) -> list[SourceFile]:
    """Source files named by their path relative to `root` without suffix (``a.jpg`` and ``a.png`` in one folder
    would collide: the later ones keep their suffix as ``a_png``)."""
    out, used = [], set()
    for p in paths:
        name = p.relative_to(root).with_suffix("").as_posix()
        if name in used:
            name = f"{name}_{p.suffix.lstrip('.').lower()}"
        used.add(name)
        out.append(SourceFile(p, identity(p), name))
    return out


class FileSource(Source):
    """A single image or video file."""

    def __init__(self, root, fps=None, max_frames=None, identity: str | None = None):
        super().__init__(root, fps, max_frames)
        self.identity = identity or self.root.stem

    def files(self):
        return [SourceFile(self.root, self.identity, self.root.stem)]


class ImageFolder(Source):
    """A folder (searched recursively) of images and/or videos of one identity."""

    def __init__(self, root, fps=None, max_frames=None, identity: str | None = None):
        super().__init__(root, fps, max_frames)
        self.identity = identity or self.root.resolve().name

    def files(self):
        return _named(media_files(self.root), self.root, lambda p: self.identity)


class IdentityFolders(Source):
    """A folder of identity folders, ``root/<identity>/**``; `identities` restricts and orders them."""

    def __init__(self, root, fps=None, max_frames=None, identities: Sequence[str] | str | os.PathLike | None = None):
        super().__init__(root, fps, max_frames)
        if identities is None:
            names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        else:
            names = read_identity_list(identities) if isinstance(identities, (str, os.PathLike)) else list(identities)
            missing = [n for n in names if not (self.root / n).is_dir()]
            if missing:
                raise FileNotFoundError(
                    f"{len(missing)} listed identities have no folder in {self.root}: {', '.join(missing[:10])}"
                )
        self.names = names

    def identities(self) -> list[str]:
        return list(self.names)  # including folders without any media file: they too have no face

    def files(self):
        files = [p for name in self.names for p in media_files(self.root / name)]
        return _named(files, self.root, lambda p: p.relative_to(self.root).parts[0])


def read_identity_list(path: str | os.PathLike) -> list[str]:
    """Identity names from a text file, one per line (blank lines and ``#`` comments ignored, order kept)."""
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and line not in names:
            names.append(line)
    return names


def open_source(
    path: str | os.PathLike,
    layout: str = "auto",
    fps: float | None = None,
    max_frames: int | None = None,
    identity: str | None = None,
    identities: Sequence[str] | str | os.PathLike | None = None,
) -> Source:
    """The source for `path`: a file, a folder of one identity (``layout="images"``) or a folder of identity
    folders (``layout="identities"``). ``"auto"`` picks identities when the folder holds sub-folders and no media
    files of its own, or when an identity list is given."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if path.is_file():
        return FileSource(path, fps, max_frames, identity)
    if layout == "auto":
        top_media = any(
            p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES for p in path.iterdir()
        )
        has_dirs = any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())
        layout = "identities" if identities is not None or (has_dirs and not top_media) else "images"
    if layout == "identities":
        return IdentityFolders(path, fps, max_frames, identities)
    if layout == "images":
        return ImageFolder(path, fps, max_frames, identity)
    raise ValueError(f"layout must be 'auto', 'images' or 'identities', got {layout!r}")
