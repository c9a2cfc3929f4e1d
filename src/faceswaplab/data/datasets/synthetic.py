"""Sources rendered on the fly by :mod:`faceswaplab.data.synthetic`: one identity, or the first N."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from faceswaplab.data.datasets.base import FaceSource, HeldOut, IdentitySet
from faceswaplab.data.datasets.splits import split_counts


class SyntheticIdentity(FaceSource):
    """Identity `identity` of :class:`faceswaplab.data.synthetic.SyntheticFaces`, `num_samples` renders.

    Splits are disjoint index ranges: train is [0, n_train), val the next n_val indices, test the rest. With
    `occlusion` > 0 that share of the renders has an occluder over the face and samples carry ``visible``.
    """

    def __init__(self, identity: int = 0, num_samples: int = 2500, seed: int = 0, num_identities: int = 8,
                 occlusion: float = 0.0):
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
        self._renderer = None

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
                 occlusion: float = 0.0):
        self.held_out = [HeldOut(s) for s in held_out]
        self.num_identities = int(num_identities)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.renderer_identities = int(renderer_identities or num_identities)
        self.occlusion = float(occlusion)

    def configure(self, cache_dir: str | os.PathLike, defaults: dict | None = None) -> None:
        """Held-out photos or videos (a real-face benchmark's pair) are prepared like any raw input."""
        self._cache_dir = cache_dir
        for h in self.held_out:
            if hasattr(h.source, "configure"):
                h.source.configure(cache_dir, defaults)

    def prepare(self) -> None:
        for h in self.held_out:
            h.prepare(getattr(self, "_cache_dir", None))

    def sources(self):
        return self.held_out + [SyntheticIdentity(i, self.num_samples, self.seed, self.renderer_identities,
                                                            self.occlusion)
                                for i in range(self.num_identities)]
