"""Many identities' faces as one source: pretraining an identity-specific method on a population."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from faceswaplab.data.datasets.base import FaceSource, IdentitySet


class Pool(FaceSource):
    """The faces of every identity of `identities` (an identity set or a list of sources) as one source, so that a
    pair method trains both its sides on a population: DeepFaceLab's pretraining faceset, with
    ``A=Pool(population, name="pretrain-A")`` and ``B=Pool(population, name="pretrain-B")`` (two names, as the
    data module's identities need them). Each identity keeps its own train/val/test split; sample ids are
    ``"<identity name>/<its sample id>"``.
    """

    def __init__(self, identities: IdentitySet | Sequence[FaceSource], name: str = "pool"):
        self.identities = identities if isinstance(identities, IdentitySet) else list(identities)
        self.name = str(name)
        self._members: dict[str, FaceSource] | None = None
        self._ids: dict[str, tuple[FaceSource, object]] | None = None

    def configure(self, cache_dir: str | os.PathLike, defaults: dict | None = None) -> None:
        items = [self.identities] if isinstance(self.identities, IdentitySet) else self.identities
        for x in items:
            if hasattr(x, "configure"):
                x.configure(cache_dir, defaults)

    def prepare(self, cache_dir: str | os.PathLike | None) -> None:
        if isinstance(self.identities, IdentitySet):
            self.identities.prepare()
        else:
            for s in self.identities:
                s.prepare(cache_dir)

    @property
    def members(self) -> dict[str, FaceSource]:
        """The pooled sources by name."""
        if self._members is None:
            sources = self.identities.sources() if isinstance(self.identities, IdentitySet) else self.identities
            self._members = {s.name: s for s in sources}
            if len(self._members) < len(sources):
                raise ValueError(f"pool {self.name!r}: identity names must be unique")
        return self._members

    def _index(self) -> dict[str, tuple[FaceSource, object]]:
        if self._ids is None:
            self._ids = {f"{n}/{i}": (s, i) for n, s in self.members.items() for i in s.sample_ids()}
        return self._ids

    def sample_ids(self) -> list[str]:
        return sorted(self._index())

    def split(self, fractions, seed):
        out: dict[str, list] = {}
        for n, s in self.members.items():
            for split, ids in s.split(fractions, seed).items():
                out.setdefault(split, []).extend(f"{n}/{i}" for i in ids)
        return out

    def load(self, sample_id, size: int) -> dict[str, np.ndarray]:
        source, i = self._index()[sample_id]
        return source.load(i, size)

    def yaws(self, ids) -> np.ndarray:
        index = self._index()
        return np.array([index[i][0].yaws([index[i][1]])[0] for i in ids], float)

    @property
    def has_pose(self) -> bool:
        return all(s.has_pose for s in self.members.values())

    def __repr__(self):
        names = list(self.members)
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return f"Pool(name={self.name!r}, {len(names)} identities: {shown})"
