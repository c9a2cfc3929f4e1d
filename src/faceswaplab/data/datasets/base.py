"""The interfaces of a face source (one identity) and an identity set (many), and `plain` for the config values
Hydra passes them."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np


YAW_SIZE = 64  # px at which FaceSource.yaws loads samples (landmarks scale with the crop; the angle does not)


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

    def yaws(self, ids: Sequence) -> np.ndarray:
        """Head yaw in degrees of the samples `ids`, (N,) float (yaw-balanced sampling): the source's ground-truth
        pose where it has one, else estimated from the 68 landmarks (see :func:`landmark_yaws`). Loads every sample
        at 64 px; sources that know their poses or landmarks without loading images override it."""
        raws = [self.load(i, YAW_SIZE) for i in ids]
        if raws and all("pose" in r for r in raws):
            return np.array([float(r["pose"][0]) for r in raws])
        return landmark_yaws([r["landmarks"] for r in raws], [YAW_SIZE] * len(raws))


def landmark_yaws(landmarks: Sequence, sizes: Sequence[int]) -> np.ndarray:
    """Yaw in degrees of (68, 2) crop-pixel landmarks of square crops of `sizes` px: the 3D mean face fitted by
    solvePnP (:func:`faceswaplab.metrics.attributes.head_pose`; within about a degree of the synthetic renderer's
    ground truth). NaN where the fit fails."""
    from faceswaplab.metrics.attributes import head_pose

    out = np.full(len(landmarks), np.nan)
    for size in set(int(s) for s in sizes):
        rows = [k for k, s in enumerate(sizes) if int(s) == size]
        out[rows] = head_pose(np.asarray([landmarks[k] for k in rows], np.float32), size)[:, 0].numpy()
    return out


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

    def yaws(self, ids: Sequence) -> np.ndarray:
        return self.source.yaws(ids)

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
