"""Sources read from a folder written by :func:`faceswaplab.data.preparation.prepare` (``index.jsonl`` + aligned crops)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from faceswaplab.data.datasets.base import FaceSource, IdentitySet, plain
from faceswaplab.data.datasets.splits import SPLITS, _name_seed, split_counts
from faceswaplab.images import resize_face

log = logging.getLogger(__name__)

INDEX_FILE = "index.jsonl"


def read_index(folder: str | os.PathLike) -> list[dict]:
    """The records of ``<folder>/index.jsonl`` (one aligned face each), with clear errors for a bad file."""
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no index of prepared faces (run `faceswaplab.prepare` on the input first)")
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON ({e})") from None
        missing = {"crop", "landmarks_crop"} - rec.keys()
        if missing:
            raise ValueError(f"{path}:{n}: record lacks {sorted(missing)}")
        records.append(rec)
    return records


class PreparedIdentity(FaceSource):
    """The faces of one identity in a prepared folder (``index.jsonl`` + aligned RGB crops).

    path: the prepared folder. identity: keep only records of this identity name (all records when None).
    split_block, split_gap: video frames are split in blocks of `split_block` frames; held-out frames within
    `split_gap` frames of a block of another split are dropped.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        identity: str | None = None,
        split_block: int = 60,
        split_gap: int = 5,
    ):
        self.path = Path(path).expanduser()
        self.identity = identity
        self.split_block = int(split_block)
        self.split_gap = int(split_gap)
        self._records: dict[str, dict] | None = None
        self._name: str | None = identity

    # Subclasses that prepare into a cache point `folder` elsewhere.
    @property
    def folder(self) -> Path:
        return self.path

    @property
    def records(self) -> dict[str, dict]:
        if self._records is None:
            recs = read_index(self.folder)
            if self.identity is not None:
                recs = [r for r in recs if str(r.get("identity")) == str(self.identity)]
            if not recs:
                what = f" of identity {self.identity!r}" if self.identity is not None else ""
                raise ValueError(f"{self.folder / INDEX_FILE}: no faces{what}")
            self._records = {}
            for r in recs:
                if r["crop"] in self._records:
                    raise ValueError(f"{self.folder / INDEX_FILE}: crop {r['crop']!r} listed twice")
                self._records[r["crop"]] = r
        return self._records

    @property
    def name(self) -> str:
        if self._name is None:
            names = sorted({str(r.get("identity")) for r in self.records.values() if r.get("identity") is not None})
            self._name = names[0] if len(names) == 1 else self.path.name
        return self._name

    def sample_ids(self) -> list[str]:
        return sorted(self.records)

    def _group(self, rec: dict) -> tuple[str, int]:
        frame = rec.get("frame")
        block = -1 if frame is None else int(frame) // max(1, self.split_block)
        return str(rec.get("source", rec["crop"])), block

    def split(self, fractions, seed):
        recs = self.records
        groups: dict[tuple[str, int], list[str]] = {}
        for sid in sorted(recs):
            groups.setdefault(self._group(recs[sid]), []).append(sid)
        keys = sorted(groups)
        order = np.random.default_rng(_name_seed(seed, self.name)).permutation(len(keys))
        n_train, n_val, _ = split_counts(len(keys), fractions)
        which = {}
        for rank, k in enumerate(order):
            which[keys[k]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
        out: dict[str, list] = {s: [] for s in SPLITS}
        dropped = 0
        for key, sids in groups.items():
            split = which[key]
            for sid in sids:
                if split != "train" and self._near_other_split(recs[sid], key, which):
                    dropped += 1
                    continue
                out[split].append(sid)
        if dropped:
            log.info("%s: %d held-out frames within %d frames of another split dropped", self.name, dropped,
                     self.split_gap)
        return {s: sorted(v) for s, v in out.items()}

    def _near_other_split(self, rec: dict, key: tuple[str, int], which: dict) -> bool:
        frame = rec.get("frame")
        if frame is None or self.split_gap <= 0:
            return False
        source, block = key
        offset = int(frame) - block * self.split_block
        for nb, near in ((block - 1, offset < self.split_gap), (block + 1, self.split_block - offset <= self.split_gap)):
            if near and which.get((source, nb), which[key]) != which[key]:
                return True
        return False

    def _image(self, rec: dict) -> np.ndarray:
        """The RGB crop of an index record, (H, W, 3) uint8."""
        from faceswaplab.io import read_image

        return read_image(self.folder / rec["crop"])

    def load(self, sample_id, size):
        rec = self.records[sample_id]
        image = self._image(rec)
        lm = np.asarray(rec["landmarks_crop"], np.float32)
        if lm.shape != (68, 2):
            raise ValueError(f"{self.folder / INDEX_FILE}: landmarks_crop of {rec['crop']} has shape {lm.shape}")
        image, lm = resize_face(image, lm, size)
        return {"image": image, "landmarks": lm}

    def __repr__(self):
        return f"{type(self).__name__}(path={str(self.path)!r}, identity={self.identity!r})"


class PreparedIdentities(IdentitySet):
    """Every identity of a prepared folder (or those listed in `identities`), one source each."""

    def __init__(self, path: str | os.PathLike, identities: Sequence[str] | None = None, min_samples: int = 1,
                 split_block: int = 60, split_gap: int = 5):
        self.path = Path(path).expanduser()
        self.identities = list(plain(identities)) if identities is not None else None
        self.min_samples = int(min_samples)
        self.split_block = int(split_block)
        self.split_gap = int(split_gap)

    @property
    def folder(self) -> Path:
        return self.path

    def sources(self):
        recs = read_index(self.folder)
        counts: dict[str, int] = {}
        for r in recs:
            name = str(r.get("identity", ""))
            counts[name] = counts.get(name, 0) + 1
        names = self.identities if self.identities is not None else sorted(counts)
        missing = [n for n in names if n not in counts]
        if missing:
            raise ValueError(f"{self.folder / INDEX_FILE}: no faces of identities {missing[:10]}")
        kept = [n for n in names if counts[n] >= self.min_samples]
        if len(kept) < len(names):
            log.warning("%s: %d of %d identities skipped (fewer than %d faces)", self.folder,
                        len(names) - len(kept), len(names), self.min_samples)
        return [self._source(n) for n in kept]

    def _source(self, name: str) -> PreparedIdentity:
        return PreparedIdentity(self.folder, name, self.split_block, self.split_gap)
