"""Preparation spread over independent jobs: ``chunk=i num_chunks=n`` prepares the i-th of n contiguous slices of
the input's sorted file list, then ``merge=true`` joins the slices into one index and one report.

Layout while chunked::

    <output>/faces/...                        the crops of every chunk (names do not depend on the chunking)
    <output>/chunks/<i>-of-<n>/index.jsonl    chunk i's index, report, progress and options (each chunk resumes
                                   report.jsonl  on its own, exactly as a whole run does)
                                   progress.jsonl, prepare.yaml

The merge writes ``<output>/index.jsonl``, ``report.jsonl`` and ``progress.jsonl`` as the chunks' rows in chunk
order: the same rows in the same order as one run over the whole input, so a later run into `<output>` sees every
file finished.
"""

from __future__ import annotations

import json
from pathlib import Path

from faceswaplab.data.preparation.options import OUTPUT_OPTIONS, PrepareError, PrepareOptions
from faceswaplab.data.preparation.output import read_jsonl
from faceswaplab.io import write_text

CHUNKS_DIR = "chunks"


def check_chunking(opts: PrepareOptions) -> None:
    """Refuse inconsistent chunk settings with a one-line :class:`ValueError` naming the key."""
    n, i = opts.num_chunks, opts.chunk
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"num_chunks must be a positive integer, got {n!r}")
    if opts.merge and i is not None:
        raise ValueError(f"merge=true joins every chunk: drop chunk={i}")
    if i is not None and not (isinstance(i, int) and 0 <= i < n):
        raise ValueError(f"chunk must be an integer from 0 to num_chunks-1={n - 1}, got {i!r}")
    if i is None and n > 1 and not opts.merge:
        raise ValueError(f"num_chunks={n} needs chunk=<0..{n - 1}> (one job each), or merge=true once they are done")


def chunk_dir(output: Path, chunk: int, num_chunks: int) -> Path:
    return output / CHUNKS_DIR / f"{chunk}-of-{num_chunks}"


def chunk_files(files: list, chunk: int, num_chunks: int) -> list:
    """The `chunk`-th of `num_chunks` contiguous, near-equal slices of `files` (in their order)."""
    n = len(files)
    return files[chunk * n // num_chunks:(chunk + 1) * n // num_chunks]


def merge_chunks(output: Path, files: list, num_chunks: int, record: dict) -> None:
    """Join the finished chunks of `output` into its index, report and progress files (atomic writes).

    Raises :class:`PrepareError` naming the chunk when one is missing, unfinished, or prepared with other options.
    """
    from omegaconf import OmegaConf

    rows: dict[str, list[str]] = {"index.jsonl": [], "report.jsonl": [], "progress.jsonl": []}  # progress last
    for i in range(num_chunks):
        folder = chunk_dir(output, i, num_chunks)
        rerun = f"rerun it with chunk={i} num_chunks={num_chunks}"
        if not (folder / "prepare.yaml").is_file():
            raise PrepareError(f"{folder}: chunk {i} of {num_chunks} was never run; {rerun}")
        old = OmegaConf.to_container(OmegaConf.load(folder / "prepare.yaml"))
        diff = [k for k in OUTPUT_OPTIONS if old.get(k) != record.get(k)]
        if diff:
            raise PrepareError(f"{folder}: chunk {i} was prepared with other options "
                               f"({', '.join(f'{k}: {old.get(k)!r}' for k in diff)}) than this merge")
        progress, _ = read_jsonl(folder / "progress.jsonl")
        done = {r["source"] for r in progress if r.get("complete")}
        todo = [str(f.path) for f in chunk_files(files, i, num_chunks) if str(f.path) not in done]
        if todo:
            raise PrepareError(f"{folder}: chunk {i} of {num_chunks} is unfinished ({len(todo)} files left, "
                               f"first {todo[0]}); {rerun}")
        for name in rows:
            part, _ = read_jsonl(folder / name)
            rows[name] += [json.dumps(r) + "\n" for r in part]
    crops = [json.loads(line)["crop"] for line in rows["index.jsonl"]]
    if len(set(crops)) != len(crops):
        raise PrepareError(f"{output / CHUNKS_DIR}: chunks share crops: were they run with different inputs?")
    for p in (output / "faces").rglob(".*.tmp*"):  # left by killed chunk jobs; every chunk is finished now
        p.unlink()
    for name, lines in rows.items():
        write_text(output / name, "".join(lines))
    write_text(output / "prepare.yaml", OmegaConf.to_yaml(OmegaConf.create(record)))
