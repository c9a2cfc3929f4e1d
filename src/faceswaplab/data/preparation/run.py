"""The run of :func:`prepare`: check the options, open the output folder, process the items (in worker
processes), summarise."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import logging
import multiprocessing
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from faceswaplab.data.preparation.chunks import check_chunking, chunk_dir, chunk_files, merge_chunks
from faceswaplab.data.preparation.items import Task, init_worker, process
from faceswaplab.data.preparation.options import NoFaceError, PrepareError, PrepareOptions, PrepareSummary
from faceswaplab.data.preparation.output import OutputState, item_key, read_jsonl
from faceswaplab.faces.pipeline import backend_config, largest_face, make_backend, pad_tries
from faceswaplab.io import ImageReadError
from faceswaplab.system import usable_cpus

log = logging.getLogger("faceswaplab.prepare")


def prepare(input: str | os.PathLike, output: str | os.PathLike, **options) -> PrepareSummary:
    """Detect, align and crop the faces of `input` (image, video, or folder) into `output`; see the module doc.

    Resumes an earlier run into the same `output`. Raises `NoFaceError` when an identity ends with no usable
    face (``require_faces``), `PrepareError` for unusable arguments. With ``chunk``/``num_chunks`` it prepares
    one slice of the input, and with ``merge`` it joins the finished slices (:mod:`.chunks`).
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
    if opts.format not in ("folder", "shards"):
        raise ValueError(f"format must be folder or shards, got {opts.format!r}")
    pad_tries(opts.pad)
    check_chunking(opts)
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
        backend = backend_config(opts.backend, opts.detector, opts.upsample)
        record = values | {"backend": backend}
    record["input"] = str(input_path)
    worker_opts = values | {"backend": backend, "detector": None, "upsample": None}
    if opts.merge:
        merge_chunks(output, files, opts.num_chunks, record | {"chunk": None, "num_chunks": 1, "merge": False})
        return _finish(source, _summarise(output, 0), opts, input_path, output)
    folder = output  # where this run's index, report and progress go; its crops always go to <output>/faces
    if opts.chunk is not None:
        folder = chunk_dir(output, opts.chunk, opts.num_chunks)
        files = chunk_files(files, opts.chunk, opts.num_chunks)

    # Built here too: a missing weight file or a bad setting fails now, with its own message, not in a worker.
    instance = make_backend(backend)
    state = OutputState(folder, record, opts.overwrite)
    try:
        reference = _reference_descriptor(instance, opts) if opts.select == "reference" else None
        todo = [f for f in files if str(f.path) not in state.done_files]
        if workers == 1:
            worker_opts["backend"] = instance
        new_items = _run(todo, opts, worker_opts, reference, state, output, workers) if todo else 0
    finally:
        state.close()
    summary = _summarise(folder, new_items)
    if opts.chunk is not None:  # a chunk may hold no face of some identity: the merge checks them all
        log.info(str(summary))
        return summary
    return _finish(source, summary, opts, input_path, output)


def _finish(source, summary: PrepareSummary, opts: PrepareOptions, input_path: Path, output: Path) -> PrepareSummary:
    log.info(str(summary))
    if opts.require_faces:
        _check_identities(source, summary, input_path, output)
    if opts.format == "shards":
        from faceswaplab.data.datasets.shards import write_shards

        log.info("shards written to %s", write_shards(output))
    return summary


def _reference_descriptor(backend, opts: PrepareOptions) -> np.ndarray:
    from faceswaplab.faces.backends import FaceEncoder

    try:
        image, face = largest_face(backend, opts.reference, opts.detect_size, opts.pad)
    except ImageReadError as e:
        raise PrepareError(f"reference photo {opts.reference}: {e.reason}") from None
    if face is None:
        raise PrepareError(f"no face found in the reference photo {opts.reference}")
    return FaceEncoder()(image, face)


def _items(files: list, opts: PrepareOptions, state: OutputState) -> Iterator[Task | str]:
    """Tasks still to do; after the tasks of each file, its path (str) as an end marker."""
    for f in files:
        for item in f.items(opts.fps, opts.max_frames):
            if item_key(str(item.source), item.frame) not in state.done_items:
                yield Task.of(item)
        yield str(f.path)


def _run(files, opts, worker_opts, reference, state: OutputState, output: Path, workers: int) -> int:
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
            init_worker(worker_opts, reference, str(output), in_subprocess=False)
            for entry in _items(files, opts, state):
                finish(entry if isinstance(entry, str) else process(entry))
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker,
                                        initargs=(worker_opts, reference, str(output))) as pool:
                # Results are committed in input order; at most a few items are in flight, so decoded video
                # frames never pile up in memory.
                pending: collections.deque = collections.deque()
                for entry in _items(files, opts, state):
                    pending.append(entry if isinstance(entry, str) else pool.submit(process, entry))
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
    rows, _ = read_jsonl(output / "index.jsonl")
    skips, _ = read_jsonl(output / "report.jsonl")
    progress, _ = read_jsonl(output / "progress.jsonl")
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
