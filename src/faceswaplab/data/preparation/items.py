"""The work on one image or frame: detect, select, align, write its crops.

Top-level functions and module state, so that spawned worker processes can run them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from faceswaplab.data.preparation.options import OutputError, PrepareOptions
from faceswaplab.data.sources import video_fps
from faceswaplab.faces.pipeline import find_faces, make_backend
from faceswaplab.io import ImageReadError, read_image, write_image


class Task(NamedTuple):
    """One image or decoded frame to process: a picklable copy of a source item.

    Worker processes receive these rather than source objects, so that they import only what face work needs.
    """

    source: str
    frame: int | None
    identity: str
    name: str
    image: np.ndarray | None = None
    error: str | None = None

    @classmethod
    def of(cls, item) -> "Task":
        return cls(str(item.source), item.frame, item.identity, item.name, item.image, item.error)

    def load(self) -> np.ndarray:
        return self.image if self.image is not None else read_image(self.source)


@dataclass
class ItemResult:
    source: str
    frame: int | None
    rows: list[dict]  # index rows
    skips: list[dict]  # report rows


_STATE: dict[str, Any] = {}


def init_worker(opts: dict, reference: np.ndarray | None, output: str, in_subprocess: bool = True) -> None:
    options = PrepareOptions(**opts)
    _STATE["options"] = options
    _STATE["backend"] = make_backend(options.backend, options.detector, options.upsample)
    if in_subprocess:
        import cv2

        cv2.setNumThreads(1)  # one process per core already; library threads would only contend
        if "torch" in sys.modules:  # torch backends (mtcnn, fan)
            sys.modules["torch"].set_num_threads(1)
    _STATE["reference"] = reference
    _STATE["encoder"] = None
    if reference is not None:
        from faceswaplab.faces.backends import FaceEncoder

        _STATE["encoder"] = FaceEncoder()
    _STATE["output"] = Path(output)


def _skip(item: Task, reason: str, detail: str, **extra) -> dict:
    return {"source": item.source, "frame": item.frame, "reason": reason, "detail": detail, **extra}


def process(item: Task) -> ItemResult:
    """Detect, select, align and write the faces of one image or frame; never raises for bad input."""
    result = ItemResult(item.source, item.frame, [], [])
    try:
        _process_into(item, result)
    except OutputError:
        raise
    except Exception as e:  # noqa: BLE001 - one bad file must not stop a long run; it is reported
        result.rows.clear()
        result.skips = [_skip(item, "error", f"{type(e).__name__}: {e}")]
    return result


def _process_into(item: Task, result: ItemResult) -> None:
    from faceswaplab.faces.alignment import align_face

    opts: PrepareOptions = _STATE["options"]
    if item.error is not None:
        result.skips.append(_skip(item, "unreadable", item.error))
        return
    try:
        image = item.load()
    except ImageReadError as e:
        result.skips.append(_skip(item, "unreadable", e.reason))
        return
    h, w = image.shape[:2]
    if min(h, w) < opts.min_size:
        result.skips.append(_skip(item, "too_small", f"{w}x{h} image, smaller than min_size={opts.min_size}"))
        return
    faces = find_faces(_STATE["backend"], image, opts.detect_size, opts.pad)
    if not faces:
        result.skips.append(_skip(item, "no_face", f"no face detected in the {w}x{h} image"))
        return
    faces.sort(key=lambda f: -f.area)
    candidates = []
    for k, face in enumerate(faces):
        if face.width < opts.min_face_size:
            result.skips.append(_skip(item, "face_too_small", f"face {k} is {face.width:.0f} px wide "
                                      f"(min_face_size={opts.min_face_size})", face=k, box=face.box.tolist()))
        else:
            candidates.append((k, face))
    keep = _select(image, candidates, item, result, opts)
    for k, face in keep:
        crop, m, lm_crop = align_face(image, face.landmarks, opts.size, opts.margin, opts.border)
        rel = Path("faces") / f"{item.name}_{k}.png"
        try:
            # Fast PNG compression: 4x quicker than the default level for about 10% larger files.
            write_image(_STATE["output"] / rel, crop, compress_level=1)
        except OSError as e:
            raise OutputError(f"cannot write {_STATE['output'] / rel}: {e}") from e
        fps = video_fps(item.source) if item.frame is not None else None
        result.rows.append({
            "crop": rel.as_posix(), "source": item.source, "identity": item.identity, "frame": item.frame,
            "fps": fps, "time": None if fps is None else round(item.frame / fps, 4),
            "face": k, "box": _round(face.box), "score": round(face.score, 4), "landmarks": _round(face.landmarks),
            "landmarks_crop": _round(lm_crop), "transform": _round(m, 6), "size": opts.size,
        })


def _select(image, candidates, item, result, opts) -> list:
    if not candidates or opts.select == "all":
        return candidates
    n = len(candidates)
    if opts.select == "largest":
        for k, face in candidates[1:]:
            result.skips.append(_skip(item, "extra_face", f"{n} faces found, kept the largest",
                                      face=k, box=face.box.tolist()))
        return candidates[:1]
    # select == "reference": the face closest in identity, if it is close enough
    encoder, ref = _STATE["encoder"], _STATE["reference"]
    for _, face in candidates:
        face.embedding = encoder(image, face)
    dist = [float(np.linalg.norm(face.embedding - ref)) for _, face in candidates]
    best = int(np.argmin(dist))
    for i, (k, face) in enumerate(candidates):
        if i == best and dist[i] <= opts.tolerance:
            continue
        reason = "extra_face" if dist[best] <= opts.tolerance else "no_match"
        result.skips.append(_skip(item, reason, f"descriptor distance to the reference {dist[i]:.3f} "
                                  f"(tolerance {opts.tolerance})", face=k, box=face.box.tolist()))
    return [candidates[best]] if dist[best] <= opts.tolerance else []


def _round(a, digits: int = 2) -> list:
    return np.round(np.asarray(a, np.float64), digits).tolist()
