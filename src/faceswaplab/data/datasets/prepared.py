"""Sources read from a folder written by :func:`faceswaplab.data.preparation.prepare` (``index.jsonl`` + aligned crops)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from faceswaplab.data.datasets.base import FaceSource, IdentitySet, landmark_yaws, plain
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


FALLBACK_FPS = 30.0  # assumed frame rate of a video whose rate is neither in the index nor readable from the file


class PreparedIdentity(FaceSource):
    """The faces of one identity in a prepared folder (``index.jsonl`` + aligned RGB crops).

    path: the prepared folder. identity: keep only records of this identity name (all records when None).
    split_block_s, split_gap_s: video frames are split in blocks of `split_block_s` seconds of the video; a held-out
    frame closer than `split_gap_s` seconds to a training block of the same video is dropped, so every held-out
    frame is at least that far in time from every training frame. A frame's time is the index's ``time``, else its
    ``frame`` over the video's frame rate (the index's ``fps``, else read from the video file, else 30 fps with a
    warning).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        identity: str | None = None,
        split_block_s: float = 10.0,
        split_gap_s: float = 2.0,
    ):
        self.path = Path(path).expanduser()
        self.identity = identity
        self.split_block_s = float(split_block_s)
        self.split_gap_s = float(split_gap_s)
        if self.split_block_s <= 0 or self.split_gap_s < 0:
            raise ValueError(f"{self.path}: split_block_s must be > 0 and split_gap_s >= 0, got "
                             f"{split_block_s}, {split_gap_s}")
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

    def frame_times(self) -> dict[str, float]:
        """Seconds into its video of every video-frame record (stills are left out)."""
        from faceswaplab.data.sources import video_fps

        times, unknown = {}, set()
        for sid, rec in self.records.items():
            if rec.get("frame") is None:
                continue
            if rec.get("time") is not None:
                times[sid] = float(rec["time"])
                continue
            fps = rec.get("fps") or video_fps(str(rec.get("source", "")))
            if not fps:
                unknown.add(str(rec.get("source")))
                fps = FALLBACK_FPS
            times[sid] = int(rec["frame"]) / float(fps)
        if unknown:
            log.warning("%s: no frame rate in the index nor readable from %s: splitting its frames at an assumed "
                        "%g fps", self.folder / INDEX_FILE, sorted(unknown)[:3], FALLBACK_FPS)
        return times

    def split(self, fractions, seed):
        recs, times = self.records, self.frame_times()
        block = {sid: int(t // self.split_block_s) for sid, t in times.items()}
        groups: dict[tuple[str, int], list[str]] = {}
        for sid in sorted(recs):
            groups.setdefault((str(recs[sid].get("source", sid)), block.get(sid, -1)), []).append(sid)
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
                if split != "train" and sid in times and self._near_train(key[0], times[sid], which):
                    dropped += 1
                    continue
                out[split].append(sid)
        if dropped:
            log.info("%s: %d held-out frames within %g s of a training block dropped", self.name, dropped,
                     self.split_gap_s)
        return {s: sorted(v) for s, v in out.items()}

    def _near_train(self, source: str, t: float, which: dict) -> bool:
        # Every block overlapping (t - gap, t + gap), the frame's own block included: a training block there may
        # hold a frame closer than the gap.
        b, gap = self.split_block_s, self.split_gap_s
        if gap <= 0:
            return False
        first, last = int((t - gap) // b), int((t + gap) // b)
        return any(which.get((source, nb)) == "train" and (nb + 1) * b > t - gap and nb * b < t + gap
                   for nb in range(first, last + 1))

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

    def yaws(self, ids) -> np.ndarray:
        """Yaw estimated from the index's crop landmarks (:func:`landmark_yaws`), no image read."""
        recs = [self.records[i] for i in ids]
        sizes = [rec.get("size") or self._image(rec).shape[0] for rec in recs]
        return landmark_yaws([rec["landmarks_crop"] for rec in recs], sizes)

    def __repr__(self):
        return f"{type(self).__name__}(path={str(self.path)!r}, identity={self.identity!r})"


class PreparedIdentities(IdentitySet):
    """Every identity of a prepared folder (or those listed in `identities`), one source each."""

    def __init__(self, path: str | os.PathLike, identities: Sequence[str] | None = None, min_samples: int = 1,
                 split_block_s: float = 10.0, split_gap_s: float = 2.0):
        self.path = Path(path).expanduser()
        self.identities = list(plain(identities)) if identities is not None else None
        self.min_samples = int(min_samples)
        self.split_block_s = float(split_block_s)
        self.split_gap_s = float(split_gap_s)

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
        return PreparedIdentity(self.folder, name, self.split_block_s, self.split_gap_s)


class FacesAsIdentities(IdentitySet):
    """Every face of a prepared (or raw) source as an identity of its own, with its one image: the faces of group
    photos as single-image distractors of an identity gallery (whose people are not labelled).

    source: a :class:`PreparedIdentity` or :class:`RawIdentity` (prepare a group photo with ``options: {select:
    all}`` to keep every face). exclude: crop names (or stems) to leave out.
    """

    def __init__(self, source: PreparedIdentity, exclude: Sequence[str] = ()):
        self.source = source
        self.exclude = set(plain(exclude) or ())

    def configure(self, cache_dir, defaults=None) -> None:
        if hasattr(self.source, "configure"):
            self.source.configure(cache_dir, defaults)

    def prepare(self) -> None:
        self.source.prepare(getattr(self.source, "cache_dir", None))

    def sources(self) -> list[PreparedIdentity]:
        crops = [c for c in self.source.sample_ids() if c not in self.exclude and Path(c).stem not in self.exclude]
        return [_OneFace(self.source.folder, c) for c in crops]


class _OneFace(PreparedIdentity):
    """One record of a prepared folder, named after its crop."""

    def __init__(self, path: Path, crop: str):
        super().__init__(path)
        self.crop = crop
        self._name = Path(crop).stem

    @property
    def records(self) -> dict[str, dict]:
        if self._records is None:
            self._records = {k: v for k, v in super().records.items() if k == self.crop}
        return self._records

    def prepare(self, cache_dir=None) -> None:
        """Prepared already (by the set)."""
