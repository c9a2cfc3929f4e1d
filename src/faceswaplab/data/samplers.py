"""The data module's samplers: shuffling and per-sample augmentation seeds, drawn in the main process from
(seed, epoch), so that batches are identical for any number of DataLoader workers; and the workers' setup."""

from __future__ import annotations

import multiprocessing
import random
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Sampler


def worker_init(worker_id: int) -> None:
    """DataLoader worker setup: one thread each for OpenCV and torch (the workers already run in parallel)."""
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def worker_context():
    """Where the DataLoader workers of a distributed run start: a fork server (a clean single-threaded process that
    has imported the data code), not this process. Forking a rank that runs threads (gloo's, another loader's queue
    feeders) can leave the new worker deadlocked inside ``fork`` itself: a two-node run hung so, its second worker
    stuck in ``PyOS_AfterFork_Child``. Like spawning, it needs the ``__main__`` guard that DDP's launcher needs
    anyway. None (the platform's default) where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["faceswaplab.data"])  # imported once by the server, inherited by each worker
    return ctx


def _permutations(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """`length` indices into range(n): concatenated fresh permutations (the shorter side of a pair cycles)."""
    reps = -(-length // n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:length]


def yaw_bins(yaws, bins: int) -> np.ndarray:
    """The bin of each yaw (degrees) among `bins` equal-width bins spanning the yaws' range, (N,) int. A yaw that
    could not be estimated (NaN) counts as the median one."""
    yaws = np.asarray(yaws, float)
    finite = np.isfinite(yaws)
    yaws = np.where(finite, yaws, np.median(yaws[finite]) if finite.any() else 0.0)
    lo, hi = (yaws.min(), yaws.max()) if len(yaws) else (0.0, 0.0)
    if hi <= lo:
        return np.zeros(len(yaws), int)
    return np.minimum(((yaws - lo) / (hi - lo) * bins).astype(int), bins - 1)


def _balanced(bin_of: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """`length` indices drawing every non-empty bin equally often (fresh permutations of the bins), and within a
    bin its samples in fresh permutations: DeepFaceLab's uniform_yaw sampling, as a fixed-length epoch."""
    groups = [np.flatnonzero(bin_of == b) for b in np.unique(bin_of)]
    which = _permutations(len(groups), length, rng)  # (length,) the bin of every draw
    out = np.empty(length, int)
    for g, members in enumerate(groups):
        slots = np.flatnonzero(which == g)
        if len(slots):
            out[slots] = members[_permutations(len(members), len(slots), rng)]
    return out


class _EpochSampler(Sampler):
    """Base of the samplers: an epoch counter (Lightning calls `set_epoch`; plain loops advance it per pass)."""

    def __init__(self, shuffle: bool, seed: int):
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        # The trainer's epoch, set by the data module (FaceDataModule._trainer_sampler says why).
        self.epoch_of: Callable[[], int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rng(self) -> np.random.Generator:
        if self.epoch_of is not None:
            self.epoch = int(self.epoch_of())
        return np.random.default_rng([self.seed, self.epoch])

    def _seeds(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # Per-item augmentation seeds; -1 (no augmentation) when not shuffling, i.e. for evaluation.
        return rng.integers(0, 2**31 - 1, n) if self.shuffle else np.full(n, -1)


class PairSampler(_EpochSampler):
    """Yields ``(i_A, i_B, aug_seed)``: max(len_a, len_b) items per epoch, A and B permuted independently.

    `bins` (shuffled only): each side's bin of every sample, e.g. :func:`yaw_bins`; every side then draws its
    non-empty bins equally often (pose-balanced batches) instead of every sample once per pass."""

    def __init__(self, len_a: int, len_b: int, shuffle: bool = True, seed: int = 0,
                 bins: tuple[np.ndarray, np.ndarray] | None = None):
        super().__init__(shuffle, seed)
        if len_a < 1 or len_b < 1:
            raise ValueError(f"both identities need samples in this split (A has {len_a}, B has {len_b})")
        self.len_a, self.len_b = len_a, len_b
        self.bins = bins

    def __len__(self) -> int:
        return max(self.len_a, self.len_b)

    def __iter__(self):
        n = len(self)
        rng = self._rng()
        if self.shuffle and self.bins is not None:
            ia, ib = _balanced(self.bins[0], n, rng), _balanced(self.bins[1], n, rng)
        elif self.shuffle:
            ia, ib = _permutations(self.len_a, n, rng), _permutations(self.len_b, n, rng)
        else:
            ia, ib = np.arange(n) % self.len_a, np.arange(n) % self.len_b
        seeds = self._seeds(rng, n)
        self.epoch += 1
        for a, b, s in zip(ia.tolist(), ib.tolist(), seeds.tolist()):
            yield a, b, s


class ManySampler(_EpochSampler):
    """Yields ``(identity, index, aug_seed)`` over every sample of every identity once per epoch (unshuffled:
    the first sample of every identity, then the second, ...).

    ``group_size > 1`` (shuffled only): the epoch is a shuffled sequence of runs of `group_size` samples of one
    identity (few-shot meta-learning episodes of K + 1 frames); each identity's last run is filled up with other
    samples of it, so batches of a multiple of `group_size` hold whole runs."""

    def __init__(self, lengths: Sequence[int], shuffle: bool = True, seed: int = 0, group_size: int = 1):
        super().__init__(shuffle, seed)
        self.lengths = [int(n) for n in lengths]
        if int(group_size) < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}")
        self.group_size = int(group_size)

    def _grouped(self) -> bool:
        return self.shuffle and self.group_size > 1

    def __len__(self) -> int:
        if self._grouped():
            return sum(-(-n // self.group_size) * self.group_size for n in self.lengths)
        return sum(self.lengths)

    def __iter__(self):
        rng = self._rng()
        if self._grouped():
            g, runs = self.group_size, []
            for k, n in enumerate(self.lengths):
                if n > 0:
                    ix = _permutations(n, -(-n // g) * g, rng).reshape(-1, g)  # (runs, g): the last one filled up
                    runs += [(k, r) for r in ix]
            order = rng.permutation(len(runs))
            ks = np.array([runs[j][0] for j in order for _ in range(g)], dtype=int)
            ix = np.concatenate([runs[j][1] for j in order] or [np.zeros(0, int)])
            seeds = self._seeds(rng, len(ks))
        else:
            ks = np.concatenate([np.full(n, k) for k, n in enumerate(self.lengths)] or [np.zeros(0, int)])
            ix = np.concatenate([np.arange(n) for n in self.lengths] or [np.zeros(0, int)])
            # Unshuffled (evaluation, previews): round-robin over the identities, so any batch mixes identities.
            order = rng.permutation(len(ks)) if self.shuffle else np.lexsort((ks, ix))
            ks, ix = ks[order], ix[order]
            seeds = self._seeds(rng, len(ks))
        self.epoch += 1
        for k, i, s in zip(ks.tolist(), ix.tolist(), seeds.tolist()):
            yield k, i, s


def rank_share(sampler, num_replicas: int, rank: int):
    """Rank `rank`'s share of `sampler`'s order under DDP: whole runs of its ``group_size`` items (few-shot episodes
    stay on one process), runs ``rank, rank + num_replicas, ...``; the order is padded with its first runs so that
    every rank gets as many. A ``DistributedSampler``, so Lightning does not wrap it again."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    group = sampler.group_size if getattr(sampler, "_grouped", lambda: False)() else 1

    class _RunShare(DistributedSamplerWrapper):
        def __init__(self):
            super().__init__(sampler, num_replicas=num_replicas, rank=rank, shuffle=False)
            runs = -(-len(sampler) // group)
            self.num_samples = -(-runs // num_replicas) * group
            self.total_size = self.num_samples * num_replicas

        def __iter__(self):
            self.dataset.reset()
            items = [self.dataset[i] for i in range(len(self.dataset))]
            runs = [items[i:i + group] for i in range(0, len(items), group)]
            runs += runs[: self.total_size // group - len(runs)]  # pad: every rank the same number of runs
            return (item for run in runs[rank::num_replicas] for item in run)

    return _RunShare()
