"""Prepared faces as shards in Lightning's litdata optimised format, for data sets too large for a folder of PNGs.

``<prepared>/shards/`` holds litdata chunk files (``chunk-*.bin`` and their ``index.json``: many crops per file,
stored as raw RGB pixels, so reading one is a slice of a file already open and nothing is decoded) and
``index.jsonl``: the prepared folder's index, each row with the position (``item``) of its crop in the chunks.
The chunks can live on local disk or in object storage (``s3://``, ``gs://``; litdata downloads and caches chunks
as they are needed); the small ``index.jsonl`` is read from a local folder.

Splits, samplers and augmentation are the folder format's: :class:`ShardedIdentity` is a
:class:`~faceswaplab.data.datasets.prepared.PreparedIdentity` that reads its crops from the chunks, so the data
module's seeded, per-epoch sampling (and with it exact resume, across loader workers and ranks) is unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from faceswaplab.data.datasets.prepared import INDEX_FILE, PreparedIdentities, PreparedIdentity, read_index

SHARDS_DIR = "shards"
CHUNK_BYTES = "64MB"  # litdata's chunk size: large enough for object-storage reads, small enough to cache


def write_shards(folder: str | os.PathLike, chunk_bytes: str | int = CHUNK_BYTES) -> Path:
    """Pack the crops of prepared `folder` into ``<folder>/shards`` (see the module doc) and return that folder.

    Nothing is done when the shards already hold exactly the folder's index; otherwise they are rebuilt in a
    temporary folder that replaces the old one only when complete.
    """
    from faceswaplab.metrics.weights import require_package

    require_package("litdata", "litdata", "format=shards")
    from litdata.streaming.writer import BinaryWriter

    from faceswaplab.io import read_image, write_text

    folder = Path(folder)
    rows = read_index(folder)
    out = folder / SHARDS_DIR
    lines = [json.dumps(r | {"item": i}) + "\n" for i, r in enumerate(rows)]
    if (out / INDEX_FILE).is_file() and (out / INDEX_FILE).read_text() == "".join(lines):
        return out
    tmp = folder / f".{SHARDS_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    writer = BinaryWriter(str(tmp), chunk_bytes=chunk_bytes)
    for i, r in enumerate(rows):
        writer.add_item(i, {"image": read_image(folder / r["crop"])})  # (H, W, 3) uint8
    writer.done()
    writer.merge()
    write_text(tmp / INDEX_FILE, "".join(lines))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


class ShardedIdentity(PreparedIdentity):
    """The faces of one identity in a sharded prepared set (:func:`write_shards`).

    path: the local folder holding the shards' ``index.jsonl`` (``<prepared>/shards``). chunks: where the chunk
    files are, if not in `path` (a folder or an object-storage URL such as ``s3://bucket/faces/shards``).
    cache_dir: where litdata caches chunks downloaded from `chunks`. Other arguments as :class:`PreparedIdentity`.
    """

    def __init__(self, path: str | os.PathLike, identity: str | None = None, split_block_s: float = 10.0,
                 split_gap_s: float = 2.0, chunks: str | None = None, cache_dir: str | None = None):
        super().__init__(path, identity, split_block_s, split_gap_s)
        self.chunks = chunks
        self.cache_dir = cache_dir
        self._dataset = None
        self._pid = None

    def _image(self, rec: dict) -> np.ndarray:
        if "item" not in rec:
            raise ValueError(f"{self.folder / INDEX_FILE}: {rec['crop']} has no shard item (not a shards index: "
                             f"write one with `prepare ... format=shards`)")
        # Opened in the process that reads, never pickled, and never inherited: a loader worker forked after the
        # parent read (a preview, a validation pass) gets the parent's reader without the threads that serve it.
        if self._dataset is None or self._pid != os.getpid():
            from faceswaplab.metrics.weights import require_package

            require_package("litdata", "litdata", "reading shards")
            from litdata import StreamingDataset

            # batch_decode off: litdata would otherwise decode a window of neighbouring items on every random
            # read (about 70x slower at 256 px in benchmarks/data_loading.md).
            self._dataset = StreamingDataset(self.chunks or str(self.folder), cache_dir=self.cache_dir,
                                             batch_decode=False)
            self._pid = os.getpid()
        return self._dataset[int(rec["item"])]["image"]

    def __getstate__(self):
        return self.__dict__ | {"_dataset": None}

    def __repr__(self):
        return f"{type(self).__name__}(path={str(self.path)!r}, identity={self.identity!r}, chunks={self.chunks!r})"


class ShardedIdentities(PreparedIdentities):
    """Every identity of a sharded prepared set (or those listed in `identities`), one source each."""

    def __init__(self, path: str | os.PathLike, identities: Sequence[str] | None = None, min_samples: int = 1,
                 split_block_s: float = 10.0, split_gap_s: float = 2.0, chunks: str | None = None,
                 cache_dir: str | None = None):
        super().__init__(path, identities, min_samples, split_block_s, split_gap_s)
        self.chunks = chunks
        self.cache_dir = cache_dir

    def _source(self, name: str) -> ShardedIdentity:
        return ShardedIdentity(self.folder, name, self.split_block_s, self.split_gap_s, self.chunks, self.cache_dir)
