"""Detect, align and crop faces from photos and videos into a dataset folder.

Command line (Hydra, ``conf/prepare.yaml``)::

    python -m faceswaplab.prepare input=<file|folder> output=<dir> [size=256] [backend=dlib|mtcnn|fan]
        [detector=hog|cnn] [select=largest|reference|all] [reference=<photo>] [fps=5] [workers=2] ...

Python: ``prepare(input, output, **options) -> PrepareSummary`` with the options of :class:`PrepareOptions`.

Each input image or sampled video frame goes through: read (EXIF-transposed, converted to 8-bit RGB) -> detect
faces (on a downscaled copy when larger than ``detect_size``; retried on a padded copy when nothing is found
and ``pad=auto``) -> 68 landmarks at full resolution -> choose faces (``select``) -> similarity-align to the
canonical template (``faces.template``, fitted on the INNER landmarks) -> crop at ``size`` with ``margin``.

Output layout::

    <output>/faces/<relative/path/stem>[_f<frame:06d>]_<k>.png   aligned crops, RGB (k: face rank by box area)
    <output>/index.jsonl     one JSON object per face written:
                             {"crop": path relative to <output>, "source": input file, "identity": name,
                              "frame": int | null, "face": k, "box": [x0, y0, x1, y1], "score": float,
                              "landmarks": 68x2 in the original image, "landmarks_crop": 68x2 in crop pixels,
                              "transform": 2x3 original -> crop, "size": int}
    <output>/report.jsonl    one JSON object per skipped input, frame or face:
                             {"source", "frame", "reason", "detail"[, "face", "box"]}; reasons: unreadable,
                             too_small, no_face, face_too_small, extra_face, no_match, error
    <output>/prepare.yaml    the resolved options
    <output>/progress.jsonl  resume bookkeeping: one line per finished item and per finished file

Every file is written atomically; index and report rows are appended only once their item is finished, and a
rerun skips finished files and frames, so an interrupted run resumes without duplicates or half-written files.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np

from faceswaplab.config import config_dir
from faceswaplab.faces import template
from faceswaplab.io import ImageReadError, read_image, write_image, write_text

log = logging.getLogger("faceswaplab.prepare")

# Options that change what is written: a resumed run must use the same values.
_OUTPUT_OPTIONS = ("input", "size", "margin", "backend", "select", "reference", "tolerance", "fps", "max_frames",
                   "layout", "identity", "identities", "min_size", "min_face_size", "detect_size", "pad", "border")


class PrepareError(RuntimeError):
    """The run cannot proceed or ended without a usable result; the message names the input and the report."""


class NoFaceError(PrepareError):
    """A source (identity) ended with no usable face."""


class OutputError(PrepareError):
    """Writing to the output folder failed (disk full, permissions): the run stops, to be resumed later."""


@dataclass
class PrepareOptions:
    """Options of :func:`prepare` (the same keys as ``conf/prepare.yaml``)."""

    size: int = 256  # crop side in pixels
    margin: float = template.DEFAULT_MARGIN  # extra context around the template framing
    backend: Any = "dlib"  # a name from conf/backend/, a config with _target_, or a FaceBackend (workers=1)
    detector: str | None = None  # overrides the backend's detector (dlib: hog | cnn; fan: sfd | dlib)
    upsample: int | None = None  # overrides the backend's upsampling (dlib: times the image is doubled)
    select: str = "largest"  # largest | reference | all
    reference: str | None = None  # photo of the person to keep, for select=reference
    tolerance: float = 0.6  # select=reference: largest descriptor distance still counted as the same person
    fps: float | None = None  # video frames sampled per second (None: every frame)
    max_frames: int | None = None  # at most this many sampled frames per video
    layout: str = "auto"  # folder inputs: auto | images (one identity) | identities (one folder each)
    identity: str | None = None  # identity name for a one-identity input (default: file stem / folder name)
    identities: Any = None  # identity folders to use, in order: a list or a text file (one name per line)
    min_size: int = 32  # images whose short side is smaller are skipped (too_small)
    min_face_size: int = 40  # faces whose box is narrower (original pixels) are skipped (face_too_small)
    detect_size: int = 1024  # images with a longer side are detected on a copy downscaled to this
    pad: Any = "auto"  # fraction of each side padded before detection; auto: retry with 0.5 when none found
    border: str = "replicate"  # how crops are filled beyond the image edge: replicate | reflect | constant
    workers: int = 0  # processes (0: all CPU cores); 1 runs in this process
    progress: bool = True  # show a progress bar
    require_faces: bool = True  # raise NoFaceError when an identity ends with no face
    overwrite: bool = False  # start afresh even if <output> holds a run with other options


@dataclass
class PrepareSummary:
    """What a run left in the output folder (totals, including earlier runs it resumed)."""

    output: Path
    faces: int  # faces in index.jsonl
    items: int  # images and frames finished
    new_items: int  # of which finished in this run
    skipped: dict[str, int] = field(default_factory=dict)  # report rows per reason
    identities: dict[str, int] = field(default_factory=dict)  # faces per identity

    def __str__(self) -> str:
        skips = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        n = len(self.identities)
        return (f"prepared {self.faces} faces of {n} identit{'y' if n == 1 else 'ies'} from {self.items} "
                f"images/frames ({self.new_items} new) in {self.output}; skipped: {skips}; "
                f"see {self.output / 'report.jsonl'}")


# ---------------------------------------------------------------------------------------------------------------
# Backends


def make_backend(backend: Any = "dlib", detector: str | None = None, upsample: int | None = None):
    """Instantiate a face backend from a name in ``conf/backend/``, a config with ``_target_``, or pass one through."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from faceswaplab.faces.backends import FaceBackend

    if isinstance(backend, FaceBackend):
        return backend
    cfg = _backend_config(backend, detector, upsample)
    try:
        return instantiate(cfg)
    except InstantiationException as e:  # surface the backend's own error (e.g. MissingWeightsError)
        if e.__cause__ is not None:
            raise e.__cause__ from None
        raise


def _backend_config(backend: Any, detector: str | None = None, upsample: int | None = None) -> dict:
    """The backend's config as a plain dict with ``_target_``, with the `detector` / `upsample` shortcuts applied."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(backend, str):
        path = config_dir() / "backend" / f"{backend}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ValueError(f"unknown face backend {backend!r}; available: {', '.join(names)}")
        cfg = OmegaConf.to_container(OmegaConf.load(path))
    elif isinstance(backend, DictConfig):
        cfg = OmegaConf.to_container(backend, resolve=True)
    elif isinstance(backend, dict) and "_target_" in backend:
        cfg = dict(backend)
    else:
        raise TypeError(f"backend must be a name, a config with _target_ or a FaceBackend, got {backend!r}")
    cfg.update({k: v for k, v in (("detector", detector), ("upsample", upsample)) if v is not None})
    return cfg


# ---------------------------------------------------------------------------------------------------------------
# Per-item work (top-level functions and module state, so that spawned worker processes can run them)


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


def _init_worker(opts: dict, reference: np.ndarray | None, output: str, in_subprocess: bool = True) -> None:
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


def _process(item: Task) -> ItemResult:
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
        result.rows.append({
            "crop": rel.as_posix(), "source": item.source, "identity": item.identity, "frame": item.frame,
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


def find_faces(backend, image: np.ndarray, detect_size: int = 1024, pad: Any = "auto") -> list:
    """All faces of `image` with landmarks in its own pixel coordinates.

    Detection runs on a copy downscaled to `detect_size` (long side) when the image is larger, which bounds its
    cost (faces narrower than about ``40 * long side / detect_size`` px are then missed by dlib HOG with one
    upsampling); landmarks are always placed at full resolution. `pad` (a fraction of each side added by edge
    replication, or "auto": 0.5 tried only when nothing is found) helps with tight crops whose face touches
    the border, which detectors miss.
    """
    import cv2

    from faceswaplab.faces.backends import Face

    def run(img: np.ndarray) -> list:
        h, w = img.shape[:2]
        scale = min(1.0, detect_size / max(h, w))
        small = img if scale == 1.0 else cv2.resize(img, (round(w * scale), round(h * scale)),
                                                    interpolation=cv2.INTER_AREA)
        boxes, scores = backend.detect(small)
        if len(boxes) == 0:
            return []
        boxes = np.asarray(boxes, np.float64) / scale
        lms = backend.landmarks(img, boxes)
        return [Face(b, float(s), l) for b, s, l in zip(boxes, scores, lms)]

    tries = _pad_tries(pad)
    for p in tries:
        if p <= 0:
            faces = run(image)
        else:
            h, w = image.shape[:2]
            py, px = int(round(p * h)), int(round(p * w))
            padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE)
            faces = run(padded)
            for f in faces:  # back to the coordinates of the unpadded image
                f.box = f.box - [px, py, px, py]
                f.landmarks = f.landmarks - [px, py]
        if faces:
            return faces
    return []


def _pad_tries(pad: Any) -> list[float]:
    if pad == "auto":
        return [0.0, 0.5]
    if pad is None:
        return [0.0]
    if isinstance(pad, (int, float)) and not isinstance(pad, bool) and 0 <= pad <= 2:
        return [float(pad)]
    raise ValueError(f"pad must be 'auto', null or a fraction of the image side in [0, 2], got {pad!r}")


# ---------------------------------------------------------------------------------------------------------------
# Output folder state: resume, atomic appends


def _item_key(source: str, frame: int | None) -> tuple[str, int | None]:
    return (source, frame)


def _read_jsonl(path: Path) -> tuple[list[dict], bool]:
    """Rows of a JSON-lines file, and whether its end was broken (a partly written line, dropped)."""
    rows, broken = [], False
    if path.exists():
        text = path.read_text()
        broken = bool(text) and not text.endswith("\n")  # cut before its newline: rewrite before appending
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                broken = True
    return rows, broken


class _OutputState:
    def __init__(self, output: Path, record: dict, overwrite: bool):
        self.output = output
        output.mkdir(parents=True, exist_ok=True)
        self.index_path = output / "index.jsonl"
        self.report_path = output / "report.jsonl"
        self.progress_path = output / "progress.jsonl"
        self._check_options(record, overwrite)
        self._remove_stale_temporaries()
        progress, broken = _read_jsonl(self.progress_path)
        if broken:  # a line cut by a kill: drop it, or the next append would be glued onto it
            write_text(self.progress_path, "".join(json.dumps(r) + "\n" for r in progress))
        self.done_items = {_item_key(r["source"], r.get("frame")) for r in progress if "frame" in r}
        self.done_files = {r["source"] for r in progress if r.get("complete")}
        # Drop rows of items that did not finish (the run was killed between writing them and the progress line).
        for path in (self.index_path, self.report_path):
            rows, broken = _read_jsonl(path)
            kept = [r for r in rows if _item_key(r["source"], r.get("frame")) in self.done_items]
            if broken or len(kept) != len(rows):
                write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
        self._files = {p: open(p, "a") for p in (self.index_path, self.report_path, self.progress_path)}

    def _check_options(self, record: dict, overwrite: bool) -> None:
        yaml_path = self.output / "prepare.yaml"
        from omegaconf import OmegaConf

        if yaml_path.exists() and not overwrite:
            old = OmegaConf.to_container(OmegaConf.load(yaml_path))
            diff = [k for k in _OUTPUT_OPTIONS if old.get(k) != record.get(k)]
            if diff:
                changes = ", ".join(f"{k}: {old.get(k)!r} -> {record.get(k)!r}" for k in diff)
                raise PrepareError(f"{self.output} holds a run with other options ({changes}); "
                                   "use another output folder or overwrite=true")
        if overwrite:
            for p in ("index.jsonl", "report.jsonl", "progress.jsonl"):
                (self.output / p).unlink(missing_ok=True)
            shutil.rmtree(self.output / "faces", ignore_errors=True)
        write_text(yaml_path, OmegaConf.to_yaml(OmegaConf.create(record)))

    def _remove_stale_temporaries(self) -> None:
        # atomic_path names its temporaries ".<stem>.<random>.tmp<suffix>"; a killed run can leave some behind.
        for p in self.output.rglob(".*.tmp*"):
            if p.is_file():
                p.unlink()

    def commit(self, result: ItemResult) -> None:
        for path, rows in ((self.index_path, result.rows), (self.report_path, result.skips)):
            if rows:
                self._append(path, rows)
        self._append(self.progress_path, [{"source": result.source, "frame": result.frame}])
        self.done_items.add(_item_key(result.source, result.frame))

    def complete_file(self, source: str) -> None:
        self._append(self.progress_path, [{"source": source, "complete": True}])
        self.done_files.add(source)

    def _append(self, path: Path, rows: list[dict]) -> None:
        f = self._files[path]
        f.write("".join(json.dumps(r) + "\n" for r in rows))
        f.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()


# ---------------------------------------------------------------------------------------------------------------
# The run


def prepare(input: str | os.PathLike, output: str | os.PathLike, **options) -> PrepareSummary:
    """Detect, align and crop the faces of `input` (image, video, or folder) into `output`; see the module doc.

    Resumes an earlier run into the same `output`. Raises `NoFaceError` when an identity ends with no usable
    face (``require_faces``), `PrepareError` for unusable arguments.
    """
    try:
        opts = PrepareOptions(**options)
    except TypeError as e:
        known = ", ".join(f.name for f in dataclasses.fields(PrepareOptions))
        raise TypeError(f"{e}; prepare options are: {known}") from None
    if opts.select not in ("largest", "reference", "all"):
        raise ValueError(f"select must be largest, reference or all, got {opts.select!r}")
    if opts.select == "reference" and not opts.reference:
        raise ValueError("select=reference needs reference=<photo of the person>")
    if opts.border not in ("replicate", "reflect", "constant"):
        raise ValueError(f"border must be replicate, reflect or constant, got {opts.border!r}")
    if opts.size < 16 or opts.detect_size < 64:
        raise ValueError(f"size must be >= 16 and detect_size >= 64, got {opts.size} and {opts.detect_size}")
    _pad_tries(opts.pad)
    input_path, output = Path(input).resolve(), Path(output).resolve()
    if input_path.is_dir() and output.is_relative_to(input_path):
        raise PrepareError(f"output {output} lies inside the input folder {input_path}; choose another folder")

    from faceswaplab.data.sources import open_source

    source = open_source(input_path, opts.layout, opts.fps, opts.max_frames, opts.identity, opts.identities)
    files = source.files()
    if not files:
        raise PrepareError(f"no image or video files found in {input_path}")

    from faceswaplab.faces.backends import FaceBackend

    workers = opts.workers or usable_cpus()
    if isinstance(opts.backend, FaceBackend) and workers > 1:
        raise ValueError("a FaceBackend instance cannot be sent to worker processes: pass its config, or workers=1")
    if opts.reference:
        opts.reference = str(Path(opts.reference).resolve())
    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}  # no deepcopy of a backend
    if isinstance(opts.backend, FaceBackend):
        backend = opts.backend
        record = values | {"backend": type(backend).__name__}
    else:
        backend = _backend_config(opts.backend, opts.detector, opts.upsample)
        record = values | {"backend": backend}
    record["input"] = str(input_path)
    worker_opts = values | {"backend": backend, "detector": None, "upsample": None}

    # Built here too: a missing weight file or a bad setting fails now, with its own message, not in a worker.
    instance = make_backend(backend)
    state = _OutputState(output, record, opts.overwrite)
    try:
        reference = _reference_descriptor(instance, opts) if opts.select == "reference" else None
        todo = [f for f in files if str(f.path) not in state.done_files]
        if workers == 1:
            worker_opts["backend"] = instance
        new_items = _run(todo, opts, worker_opts, reference, state, workers) if todo else 0
    finally:
        state.close()
    summary = _summarise(output, new_items)
    log.info(str(summary))
    if opts.require_faces:
        _check_identities(source, summary, input_path, output)
    return summary


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _reference_descriptor(backend, opts: PrepareOptions) -> np.ndarray:
    from faceswaplab.faces.backends import FaceEncoder

    path = Path(opts.reference)
    try:
        image = read_image(path)
    except ImageReadError as e:
        raise PrepareError(f"reference photo {path}: {e.reason}") from None
    faces = find_faces(backend, image, opts.detect_size, opts.pad)
    if not faces:
        raise PrepareError(f"no face found in the reference photo {path}")
    face = max(faces, key=lambda f: f.area)
    return FaceEncoder()(image, face)


def _items(files: list, opts: PrepareOptions, state: _OutputState) -> Iterator[Task | str]:
    """Tasks still to do; after the tasks of each file, its path (str) as an end marker."""
    for f in files:
        for item in f.items(opts.fps, opts.max_frames):
            if _item_key(str(item.source), item.frame) not in state.done_items:
                yield Task.of(item)
        yield str(f.path)


def _run(files, opts, worker_opts, reference, state: _OutputState, workers: int) -> int:
    from tqdm import tqdm

    total = sum(_estimate_items(f, opts) for f in files)
    bar = tqdm(total=total, unit="img", desc="prepare", disable=not opts.progress, dynamic_ncols=True)
    done = faces = 0

    def finish(entry):
        nonlocal done, faces
        if isinstance(entry, str):
            state.complete_file(entry)
            return
        state.commit(entry)
        done += 1
        bar.update(1)
        faces += len(entry.rows)
        bar.set_postfix(faces=faces, refresh=False)

    try:
        if workers == 1:
            _init_worker(worker_opts, reference, str(state.output), in_subprocess=False)
            for entry in _items(files, opts, state):
                finish(entry if isinstance(entry, str) else _process(entry))
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                        initargs=(worker_opts, reference, str(state.output))) as pool:
                # Results are committed in input order; at most a few items are in flight, so decoded video
                # frames never pile up in memory.
                pending: collections.deque = collections.deque()
                for entry in _items(files, opts, state):
                    pending.append(entry if isinstance(entry, str) else pool.submit(_process, entry))
                    while len(pending) > 2 * workers or (pending and _ready(pending[0])):
                        head = pending.popleft()
                        finish(head if isinstance(head, str) else head.result())
                while pending:
                    head = pending.popleft()
                    finish(head if isinstance(head, str) else head.result())
    finally:
        bar.close()
    return done


def _ready(entry) -> bool:
    return isinstance(entry, str) or entry.done()


def _estimate_items(f, opts: PrepareOptions) -> int:
    if not f.is_video:
        return 1
    try:
        import av

        with av.open(str(f.path)) as c:
            s = c.streams.video[0]
            n = s.frames or 0
            if opts.fps and s.average_rate:
                n = int(np.ceil(n * opts.fps / float(s.average_rate)))
    except Exception:  # noqa: BLE001 - only a progress estimate; the real decode reports the error
        return 1
    return max(min(n, opts.max_frames or n), 1)


def _summarise(output: Path, new_items: int) -> PrepareSummary:
    rows, _ = _read_jsonl(output / "index.jsonl")
    skips, _ = _read_jsonl(output / "report.jsonl")
    progress, _ = _read_jsonl(output / "progress.jsonl")
    return PrepareSummary(
        output=output,
        faces=len(rows),
        items=sum(1 for r in progress if "frame" in r),
        new_items=new_items,
        skipped=dict(collections.Counter(r["reason"] for r in skips)),
        identities=dict(collections.Counter(r["identity"] for r in rows)),
    )


def _check_identities(source, summary: PrepareSummary, input_path: Path, output: Path) -> None:
    missing = [name for name in source.identities() if summary.identities.get(name, 0) == 0]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise NoFaceError(
            f"no usable face for {len(missing)} identit{'y' if len(missing) == 1 else 'ies'} ({shown}) in "
            f"{input_path}; see {output / 'report.jsonl'} for why each input was skipped"
        )


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _main() -> None:
    import hydra
    from omegaconf import DictConfig, OmegaConf

    from faceswaplab.config import CONFIG_DIR

    @hydra.main(config_path=CONFIG_DIR, config_name="prepare", version_base="1.3")
    def main(cfg: DictConfig) -> None:
        options = OmegaConf.to_container(cfg, resolve=True)
        input_path, output = options.pop("input"), options.pop("output")
        try:
            prepare(input_path, output, **options)
        except (PrepareError, FileNotFoundError, ValueError) as e:
            log.error(str(e))
            sys.exit(1)

    main()


if __name__ == "__main__":
    _main()
