"""The interfaces of a face source (one identity) and an identity set (many), and `plain` for the config values
Hydra passes them."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np


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


class HeldOut(FaceSource):
    """`source` kept out of training: its train split is empty, its val and test splits are the source's own (so
    they are the same images as when the source is trained on). One-shot methods preview and benchmark on it."""

    def __init__(self, source: FaceSource):
        self.source = source

    def __getattr__(self, name: str):  # everything else is the source's (name, sample_ids, load, configure, ...)
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def prepare(self, cache_dir: str | os.PathLike | None) -> None:
        self.source.prepare(cache_dir)

    def sample_ids(self) -> list:
        return self.source.sample_ids()

    def split(self, fractions: Sequence[float], seed: int) -> dict[str, list]:
        return dict(self.source.split(fractions, seed), train=[])

    def load(self, sample_id, size: int) -> dict[str, np.ndarray]:
        return self.source.load(sample_id, size)

    @property
    def has_pose(self) -> bool:
        return self.source.has_pose

    def __repr__(self):
        return f"HeldOut({self.source!r})"


class IdentitySet:
    """Many identities at once (many-identity mode). Subclasses implement `sources`."""

    def configure(self, cache_dir: str | os.PathLike, defaults: dict | None = None) -> None:
        """Set the cache folder and default prepare options (used by raw inputs)."""

    def prepare(self) -> None:
        """Slow one-off work before `sources` (raw inputs)."""

    def sources(self) -> list[FaceSource]:
        raise NotImplementedError


def plain(x: Any) -> Any:
    """OmegaConf containers -> plain Python (Hydra passes DictConfig/ListConfig for nested values)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(x, (DictConfig, ListConfig)):
        return OmegaConf.to_container(x, resolve=True)
    return x
