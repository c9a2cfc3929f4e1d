"""Face sources (where one identity's aligned crops come from) and the torch datasets built on them.

A *source* (:class:`FaceSource`) is one identity: it names its samples (``sample_ids()``), splits them into
train/val/test without leakage (``split()``) and loads one sample as numpy (``load()``). Sources are light and
picklable: nothing is read or rendered before first use, so they are cheap to build from Hydra configs and to
send to DataLoader workers.

* :class:`SyntheticIdentity`: one identity of the procedural renderer, rendered on the fly, deterministic per index.
* :class:`PreparedIdentity`: the crops of a folder written by :func:`faceswaplab.prepare.prepare`.
* :class:`RawIdentity`: a folder of photos or a video (or a folder of videos), prepared into a cache folder on
  first use (resumable), then read like a prepared folder.

*Identity sets* give many sources at once for the many-identity mode: :class:`SyntheticIdentities`,
:class:`PreparedIdentities`, :class:`RawIdentities` (a folder of identity folders, CelebA-style).

Splits of real faces group samples by source file, and video frames by blocks of ``split_block`` frames, so near
duplicate frames never straddle train and held-out splits; held-out frames closer than ``split_gap`` frames to
a block of another split are dropped as well. Groups are assigned to splits by a seeded shuffle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from faceswaplab.data import schema as S
from faceswaplab.data.augment import Augment
from faceswaplab.faces.masks import DEFAULT_FOREHEAD, face_hull_mask_np, region_masks_np
from faceswaplab.images import resize_face, to_tensor

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
INDEX_FILE = "index.jsonl"


# ------------------------------------------------------------------------------------------------ splitting


def split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """How many of `n` items (samples or groups) go to train, val and test.

    Every split with a non-zero fraction gets at least one item when there are enough (test is served before
    val, as the benchmark needs it most); train gets the rest.
    """
    f = np.asarray(fractions, np.float64)
    if f.shape != (3,) or (f < 0).any() or f.sum() <= 0:
        raise ValueError(f"split fractions must be three non-negative numbers (train, val, test), got {fractions}")
    f = f / f.sum()
    n_test = int(round(f[2] * n))
    n_val = int(round(f[1] * n))
    if f[2] > 0 and n_test == 0 and n >= 2:
        n_test = 1
    if f[1] > 0 and n_val == 0 and n >= 3:
        n_val = 1
    # Train keeps at least one item when its fraction is positive.
    while f[0] > 0 and n - n_val - n_test < 1 and (n_val or n_test):
        if n_val:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def _name_seed(seed: int, name: str) -> list[int]:
    # A stable per-identity stream (Python's hash() is salted per process).
    return [int(seed), zlib.crc32(name.encode())]


# ---------------------------------------------------------------------------------------------------- sources


class FaceSource:
    """One identity's faces. Subclasses implement `name`, `sample_ids`, `split` and `load`."""

    name: str

    def prepare(self, cache_dir: str | os.PathLike | None) -> None:
        """Do slow one-off work (detection, alignment) before `setup`; no-op by default."""

    def sample_ids(self) -> list:
        """All sample ids (ints or crop paths), sorted."""
        raise NotImplementedError

    def split(self, fractions: Sequence[float], seed: int) -> dict[str, list]:
        """{"train": ids, "val": ids, "test": ids}: disjoint, reproducible for a given seed."""
        raise NotImplementedError

    def load(self, sample_id, size: int) -> dict[str, np.ndarray]:
        """One sample at `size` x `size`: image (S, S, 3) uint8 RGB, landmarks (68, 2) float32 crop pixels, plus
        pose (3,) and expression (4,) float32 where known."""
        raise NotImplementedError

    @property
    def has_pose(self) -> bool:
        return False


class SyntheticIdentity(FaceSource):
    """Identity `identity` of :class:`faceswaplab.data.synthetic.SyntheticFaces`, `num_samples` renders.

    Splits are disjoint index ranges: train is [0, n_train), val the next n_val indices, test the rest.
    """

    def __init__(self, identity: int = 0, num_samples: int = 2500, seed: int = 0, num_identities: int = 8):
        if not 0 <= identity < num_identities:
            raise ValueError(f"synthetic identity {identity} out of range for num_identities={num_identities}")
        self.identity = int(identity)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.num_identities = int(num_identities)
        self.name = f"synthetic{self.seed}-{self.identity}"
        self._renderer = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_renderer"] = None  # each worker builds its own (cheap) renderer
        return state

    @property
    def renderer(self):
        if self._renderer is None:
            from faceswaplab.data.synthetic import SyntheticFaces

            self._renderer = SyntheticFaces(seed=self.seed, num_identities=self.num_identities)
        return self._renderer

    @property
    def has_pose(self) -> bool:
        return True

    def sample_ids(self) -> list[int]:
        return list(range(self.num_samples))

    def split(self, fractions, seed):
        n_train, n_val, _ = split_counts(self.num_samples, fractions)
        ids = self.sample_ids()
        return {"train": ids[:n_train], "val": ids[n_train : n_train + n_val], "test": ids[n_train + n_val :]}

    def load(self, sample_id, size):
        r = self.renderer.sample(self.identity, int(sample_id), size=size)
        return {
            "image": r.image,
            "landmarks": np.asarray(r.landmarks, np.float32),
            "pose": np.asarray(r.pose, np.float32),
            "expression": np.asarray(r.expression, np.float32),
        }

    def __repr__(self):
        return f"SyntheticIdentity(identity={self.identity}, num_samples={self.num_samples}, seed={self.seed})"


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

    def load(self, sample_id, size):
        from faceswaplab.io import read_image

        rec = self.records[sample_id]
        path = self.folder / rec["crop"]
        image = read_image(path)
        lm = np.asarray(rec["landmarks_crop"], np.float32)
        if lm.shape != (68, 2):
            raise ValueError(f"{self.folder / INDEX_FILE}: landmarks_crop of {rec['crop']} has shape {lm.shape}")
        image, lm = resize_face(image, lm, size)
        return {"image": image, "landmarks": lm}

    def __repr__(self):
        return f"{type(self).__name__}(path={str(self.path)!r}, identity={self.identity!r})"


def _fingerprint(path: Path) -> str:
    """A cheap fingerprint of an input file or folder: names, sizes and modification times."""
    h = hashlib.sha1()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(path) if p != path else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# Prepare options that do not change what is written, left out of the cache key.
_RUN_OPTIONS = frozenset({"workers", "progress", "overwrite", "require_faces"})


def prepared_cache_dir(cache_dir: str | os.PathLike, path: str | os.PathLike, options: dict) -> Path:
    """Where raw input `path` prepared with `options` is cached: ``<cache_dir>/<name>-<hash of path+options>``."""
    path = Path(path).expanduser().resolve()
    kept = {k: v for k, v in options.items() if k not in _RUN_OPTIONS and v is not None}
    key = json.dumps({"input": str(path), "options": kept}, sort_keys=True, default=str)
    return Path(cache_dir).expanduser() / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def prepare_cached(path: str | os.PathLike, cache_dir: str | os.PathLike, options: dict) -> Path:
    """Prepare raw input `path` into its cache folder unless already done for the same input; return the folder.

    Preparation is resumable: an interrupted run continues where it stopped.
    """
    from faceswaplab.io import write_json

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    out = prepared_cache_dir(cache_dir, path, options)
    stamp = out / "prepared.json"
    fp = _fingerprint(path)
    if stamp.is_file() and (out / INDEX_FILE).is_file():
        try:
            if json.loads(stamp.read_text()).get("fingerprint") == fp:
                return out
        except json.JSONDecodeError:
            pass  # a damaged stamp only costs a (resumed) rerun
    from faceswaplab.prepare import prepare

    log.info("preparing faces of %s into %s", path, out)
    summary = prepare(str(path), str(out), **options)
    log.info("prepared %s: %s", path, summary)
    write_json(stamp, {"input": str(path.resolve()), "options": options, "fingerprint": fp, "summary": str(summary)})
    return out


class RawIdentity(PreparedIdentity):
    """A folder of photos, a video or a folder of videos of one identity, prepared into a cache on first use.

    path: the input. identity: the name shown in reports and split files (default: the input's name).
    options: :func:`faceswaplab.prepare.prepare` options (size, margin, fps, backend, select, ...), merged over
    the data module's `prepare` options. The cache folder is ``<cache_dir>/<input stem>-<hash>``, keyed by the
    absolute input path and the options.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        identity: str | None = None,
        options: dict | None = None,
        split_block: int = 60,
        split_gap: int = 5,
    ):
        super().__init__(path, None, split_block, split_gap)
        p = Path(path).expanduser().resolve()
        self._name = identity or (p.stem if p.is_file() else p.name)
        self.options = dict(plain(options) or {})
        self._folder: Path | None = None
        self.cache_dir: Path | None = None
        self.defaults: dict = {}

    def configure(self, cache_dir: str | os.PathLike, defaults: dict | None = None) -> None:
        """Set the cache folder and default prepare options (the data module does this)."""
        self.cache_dir = Path(cache_dir).expanduser()
        self.defaults = dict(plain(defaults) or {})
        self._folder = None

    @property
    def prepare_options(self) -> dict:
        # One identity: sub-folders are just more photos of it, never identities of their own.
        return {"layout": "images", **self.defaults, **self.options}

    @property
    def folder(self) -> Path:
        if self._folder is None:
            if self.cache_dir is None:
                raise RuntimeError(f"{self!r}: no cache_dir configured")
            self._folder = prepared_cache_dir(self.cache_dir, self.path, self.prepare_options)
        return self._folder

    def prepare(self, cache_dir=None):
        if cache_dir is not None and self.cache_dir is None:
            self.configure(cache_dir, self.defaults)
        self._folder = prepare_cached(self.path, self.cache_dir, self.prepare_options)
        self._records = None


# ---------------------------------------------------------------------------------------------- identity sets


class IdentitySet:
    """Many identities at once (many-identity mode). Subclasses implement `sources`."""

    def configure(self, cache_dir: str | os.PathLike, defaults: dict | None = None) -> None:
        """Set the cache folder and default prepare options (used by raw inputs)."""

    def prepare(self) -> None:
        """Slow one-off work before `sources` (raw inputs)."""

    def sources(self) -> list[FaceSource]:
        raise NotImplementedError


class SyntheticIdentities(IdentitySet):
    """All (or the first `num_identities`) identities of the synthetic renderer."""

    def __init__(self, num_identities: int = 8, num_samples: int = 2500, seed: int = 0,
                 renderer_identities: int | None = None):
        self.num_identities = int(num_identities)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.renderer_identities = int(renderer_identities or num_identities)

    def sources(self):
        return [SyntheticIdentity(i, self.num_samples, self.seed, self.renderer_identities)
                for i in range(self.num_identities)]


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
        return [PreparedIdentity(self.folder, n, self.split_block, self.split_gap) for n in kept]


class RawIdentities(PreparedIdentities):
    """A folder of identity folders (``root/<identity>/<photos or videos>``, CelebA-style), prepared into a cache.

    options: prepare options merged over the data module's; identities: restrict to these names.
    """

    def __init__(self, path: str | os.PathLike, identities: Sequence[str] | None = None, min_samples: int = 1,
                 options: dict | None = None, split_block: int = 60, split_gap: int = 5):
        super().__init__(path, identities, min_samples, split_block, split_gap)
        self.options = dict(plain(options) or {})
        self.cache_dir: Path | None = None
        self.defaults: dict = {}

    def configure(self, cache_dir, defaults=None):
        self.cache_dir = Path(cache_dir).expanduser()
        self.defaults = dict(plain(defaults) or {})

    @property
    def prepare_options(self) -> dict:
        # One identity folder without a usable face must not stop a many-identity set: it is reported by
        # prepare and then dropped here by `min_samples`.
        return {"layout": "identities", "require_faces": False, **self.defaults, **self.options}

    @property
    def folder(self) -> Path:
        if self.cache_dir is None:
            raise RuntimeError(f"{type(self).__name__}({self.path}): no cache_dir configured")
        return prepared_cache_dir(self.cache_dir, self.path, self.prepare_options)

    def prepare(self):
        prepare_cached(self.path, self.cache_dir, self.prepare_options)


# ---------------------------------------------------------------------------------------------------- datasets


class FaceDataset(Dataset):
    """The samples `ids` of one source as schema fields (unsuffixed keys), resized to `image_size`.

    Items are addressed by ``i`` or ``(i, aug_seed)``; with an `augment` and a seed >= 0 the sample is augmented
    with a generator seeded by `aug_seed`, so results do not depend on the worker that loads them. Masks and part
    maps are computed from the final landmarks (hull and regions of :mod:`faceswaplab.faces.masks`).
    """

    def __init__(
        self,
        source: FaceSource,
        ids: Sequence,
        identity: int,
        image_size: int = 64,
        augment: Augment | None = None,
        forehead: float = DEFAULT_FOREHEAD,
    ):
        if not 16 <= image_size <= 1024:
            raise ValueError(f"image_size must be within 16..1024, got {image_size}")
        self.source = source
        self.ids = list(ids)
        self.identity = int(identity)
        self.image_size = int(image_size)
        self.augment = augment
        self.forehead = float(forehead)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        i, aug_seed = item if isinstance(item, tuple) else (item, -1)
        i = int(i)
        size = self.image_size
        raw = self.source.load(self.ids[i], size)
        image = to_tensor(raw["image"])[None]  # (1, 3, S, S)
        lm = torch.from_numpy(np.asarray(raw["landmarks"], np.float32))[None]  # (1, 68, 2)
        pose = torch.from_numpy(raw["pose"]).float() if "pose" in raw else None
        if self.augment is not None and aug_seed is not None and aug_seed >= 0:
            g = torch.Generator().manual_seed(int(aug_seed))
            image, lm, info = self.augment(image, lm, g, return_info=True)
            if pose is not None:
                pose = self.augment.adjust_pose(pose[None], info)[0]
        # The numpy twins of the mask functions: same definition, less per-call overhead for one small face.
        lm_np = lm[0].numpy()
        mask = face_hull_mask_np(lm_np, size, forehead=self.forehead)  # (S, S)
        eyes, mouth = region_masks_np(lm_np, size)
        out = {
            S.IMAGE: image[0].contiguous(),
            S.LANDMARKS: lm[0].float().contiguous(),
            S.MASK: torch.from_numpy(mask)[None],
            S.PARTS: torch.from_numpy(np.stack([eyes, mouth])),
            S.IDENTITY: torch.tensor(self.identity, dtype=torch.int64),
            S.INDEX: torch.tensor(i, dtype=torch.int64),
        }
        if pose is not None:
            out[S.POSE] = pose
        if "expression" in raw:
            out[S.EXPRESSION] = torch.from_numpy(raw["expression"]).float()
        return out


class PairDataset(Dataset):
    """Unpaired A/B samples: item ``(i_A, i_B, aug_seed)`` -> the union of both samples' fields, suffixed."""

    def __init__(self, a: FaceDataset, b: FaceDataset):
        self.a, self.b = a, b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        ia, ib, seed = item if isinstance(item, tuple) else (item % len(self.a), item % len(self.b), -1)
        # Independent augmentation streams for the two sides.
        sa, sb = (-1, -1) if seed < 0 else (2 * seed, 2 * seed + 1)
        out = {S.key(k, "A"): v for k, v in self.a[(ia, sa)].items()}
        out.update({S.key(k, "B"): v for k, v in self.b[(ib, sb)].items()})
        return out


class ManyDataset(Dataset):
    """Many identities: item ``(k, i, aug_seed)`` -> sample i of identity k (unsuffixed keys)."""

    def __init__(self, datasets: Sequence[FaceDataset]):
        self.datasets = list(datasets)
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        if isinstance(item, tuple):
            k, i, seed = item
        else:
            k = int(np.searchsorted(self.offsets, item, side="right") - 1)
            i, seed = item - int(self.offsets[k]), -1
        return self.datasets[k][(i, seed)]


def describe(sources: Sequence[FaceSource], splits: dict[str, dict[str, list]]) -> str:
    """One line per identity with its split sizes."""
    lines = []
    for src in sources:
        sp = splits[src.name]
        lines.append(f"{src.name}: " + ", ".join(f"{s} {len(sp[s])}" for s in SPLITS))
    return "\n".join(lines)


def plain(x: Any) -> Any:
    """OmegaConf containers -> plain Python (Hydra passes DictConfig/ListConfig for nested values)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(x, (DictConfig, ListConfig)):
        return OmegaConf.to_container(x, resolve=True)
    return x
