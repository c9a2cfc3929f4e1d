"""Sources rendered by :mod:`faceswaplab.data.synthetic`: one identity, or the first N; renders are kept on disk."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from faceswaplab.data.datasets.base import FaceSource, HeldOut, IdentitySet
from faceswaplab.data.datasets.splits import split_counts
from faceswaplab.io import atomic_path

log = logging.getLogger(__name__)
_META = 68 * 2 + 3 + 4  # float32 landmarks, pose, expression at the head of a stored render


@functools.lru_cache(maxsize=None)
def renderer_version() -> str:
    """A digest of the renderer's source files (and the face template it frames faces with): stored renders of
    another version are never read."""
    package = Path(__file__).resolve().parents[2]
    h = hashlib.sha1()
    for f in [*sorted((package / "data" / "synthetic").glob("*.py")), package / "faces" / "template.py"]:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:12]


class RenderStore:
    """Renders of one identity at one size kept as files under `folder` (one file per render: float32
    landmarks, pose and expression, then the uint8 image, then the float32 ``visible`` mask where there is one),
    written atomically, so that a render is made once per machine rather than once per run and any number of
    processes can fill the folder at once. A file of the wrong length is rendered again; a folder that cannot be
    written is given up with one warning (renders are then made every time)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.writable = True

    def get(self, sample_id: int, size: int, visible: bool, render):
        path = self.folder / f"{size}" / f"{sample_id}.bin"
        n_img = size * size * 3
        n_all = 4 * _META + n_img + (4 * size * size if visible else 0)
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        if len(data) == n_all:
            meta = np.frombuffer(data, np.float32, _META)
            out = {"image": np.frombuffer(data, np.uint8, n_img, 4 * _META).reshape(size, size, 3),
                   "landmarks": meta[:136].reshape(68, 2), "pose": meta[136:139], "expression": meta[139:]}
            if visible:
                out["visible"] = np.frombuffer(data, np.float32, size * size, 4 * _META + n_img).reshape(size, size)
            return out
        out = render()
        if self.writable:
            parts = [np.concatenate([out["landmarks"].ravel(), out["pose"], out["expression"]]).astype(np.float32),
                     np.ascontiguousarray(out["image"], np.uint8)]
            if visible:
                parts.append(np.ascontiguousarray(out["visible"], np.float32))
            try:
                with atomic_path(path) as tmp:
                    tmp.write_bytes(b"".join(p.tobytes() for p in parts))
            except OSError as e:
                self.writable = False
                log.warning("synthetic renders are not kept on disk (%s: %s); they are rendered every time",
                            path.parent, e.strerror or e)
        return out


class SyntheticIdentity(FaceSource):
    """Identity `identity` of :class:`faceswaplab.data.synthetic.SyntheticFaces`, `num_samples` renders.

    Splits are disjoint index ranges: train is [0, n_train), val the next n_val indices, test the rest. With
    `occlusion` > 0 that share of the renders has an occluder over the face and samples carry ``visible``. With
    `store` (and a data module's `cache_dir`) each render is saved under ``<cache_dir>/renders`` the first time it
    is made and read back from there afterwards (:class:`RenderStore`): bit-identical, and a few times faster.
    """

    def __init__(self, identity: int = 0, num_samples: int = 2500, seed: int = 0, num_identities: int = 8,
                 occlusion: float = 0.0, store: bool = True):
        if not 0 <= identity < num_identities:
            raise ValueError(f"synthetic identity {identity} out of range for num_identities={num_identities}")
        self.identity = int(identity)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.num_identities = int(num_identities)
        if not 0.0 <= occlusion <= 1.0:
            raise ValueError(f"occlusion is the share of renders with an occluder, in [0, 1], got {occlusion}")
        self.occlusion = float(occlusion)
        self.name = f"synthetic{self.seed}-{self.identity}"
        self.store = bool(store)
        self._store: RenderStore | None = None
        self._renderer = None

    def configure(self, cache_dir: str | os.PathLike, defaults: dict | None = None) -> None:
        """Keep renders under `cache_dir` (the data module does this), where `store` is on."""
        if self.store:
            occ = f"-occ{self.occlusion:g}" if self.occlusion else ""
            self._store = RenderStore(Path(cache_dir).expanduser() / "renders" / renderer_version()
                                      / f"population{self.seed}-of{self.num_identities}{occ}" / str(self.identity))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_renderer"] = None  # each worker builds its own (cheap) renderer
        return state

    @property
    def renderer(self):
        if self._renderer is None:
            from faceswaplab.data.synthetic import SyntheticFaces

            self._renderer = SyntheticFaces(seed=self.seed, num_identities=self.num_identities,
                                            occlusion=self.occlusion)
        return self._renderer

    @property
    def has_pose(self) -> bool:
        return True

    def sample_ids(self) -> list[int]:
        return list(range(self.num_samples))

    def yaws(self, ids) -> np.ndarray:
        """The renderer's ground-truth yaw of renders `ids` (drawn without rendering)."""
        return np.array([self.renderer.sample_pose(self.identity, int(i))[0] for i in ids], float)

    def split(self, fractions, seed):
        n_train, n_val, _ = split_counts(self.num_samples, fractions)
        ids = self.sample_ids()
        return {"train": ids[:n_train], "val": ids[n_train : n_train + n_val], "test": ids[n_train + n_val :]}

    def load(self, sample_id, size):
        if self._store is not None:
            return self._store.get(int(sample_id), int(size), self.occlusion > 0, lambda: self._render(sample_id, size))
        return self._render(sample_id, size)

    def _render(self, sample_id, size):
        r = self.renderer.sample(self.identity, int(sample_id), size=size)
        out = {
            "image": r.image,
            "landmarks": np.asarray(r.landmarks, np.float32),
            "pose": np.asarray(r.pose, np.float32),
            "expression": np.asarray(r.expression, np.float32),
        }
        if self.occlusion > 0:
            out["visible"] = r.visible
        return out

    def __repr__(self):
        occ = f", occlusion={self.occlusion}" if self.occlusion else ""
        return f"SyntheticIdentity(identity={self.identity}, num_samples={self.num_samples}, seed={self.seed}{occ})"


class SyntheticIdentities(IdentitySet):
    """All (or the first `num_identities`) identities of the synthetic renderer, after the sources `held_out`
    (identities of another population, e.g. the benchmark's A and B: val and test images only, see
    :class:`~faceswaplab.data.datasets.base.HeldOut`)."""

    def __init__(self, num_identities: int = 8, num_samples: int = 2500, seed: int = 0,
                 renderer_identities: int | None = None, held_out: Sequence[FaceSource] = (),
                 occlusion: float = 0.0, store: bool = True):
        self.held_out = [HeldOut(s) for s in held_out]
        self.num_identities = int(num_identities)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.renderer_identities = int(renderer_identities or num_identities)
        self.occlusion = float(occlusion)
        self.store = bool(store)
        self._cache_dir = None

    def configure(self, cache_dir: str | os.PathLike, defaults: dict | None = None) -> None:
        """Held-out photos or videos (a real-face benchmark's pair) are prepared like any raw input; renders are
        kept under `cache_dir` (see :class:`SyntheticIdentity`)."""
        self._cache_dir = cache_dir
        for h in self.held_out:
            if hasattr(h.source, "configure"):
                h.source.configure(cache_dir, defaults)

    def prepare(self) -> None:
        for h in self.held_out:
            h.prepare(self._cache_dir)

    def sources(self):
        own = [SyntheticIdentity(i, self.num_samples, self.seed, self.renderer_identities, self.occlusion, self.store)
               for i in range(self.num_identities)]
        if self._cache_dir is not None:
            for s in own:
                s.configure(self._cache_dir)
        return self.held_out + own
