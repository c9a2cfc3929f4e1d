"""`FaceDataModule`: the one Lightning data module of every method and of the benchmark.

Two modes:

* ``mode="pair"``: identities `A` and `B` (sources of :mod:`faceswaplab.data.datasets`); batches hold the keys of
  :mod:`faceswaplab.data.schema` suffixed ``_A`` / ``_B``. A and B are drawn independently (unpaired): an epoch
  has ``max(len A, len B)`` items and the shorter side cycles through fresh permutations of itself.
* ``mode="many"``: every identity of `identities` (an identity set such as ``SyntheticIdentities`` or
  ``RawIdentities``, or a list of sources; defaults to ``[A, B]``); batches hold the unsuffixed keys and an epoch
  visits every sample once.

Splits (train/val/test) are fixed by `seed` and `splits` fractions (see `FaceSource.split`); `save_splits` writes
them to ``splits.json`` and `splits_file` reuses one, so the benchmark evaluates on images no method trained on.

Randomness (shuffling and per-sample augmentation seeds) is drawn in the main process by the samplers
(:mod:`faceswaplab.data.samplers`), from (seed, epoch): batches are identical for any `num_workers`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Sampler

from faceswaplab.data.augment import Augment
from faceswaplab.data.datasets import (
    SPLITS,
    FaceDataset,
    FaceSource,
    IdentitySet,
    ManyDataset,
    PairDataset,
    SampleCache,
    describe,
    plain as _plain,
)
from faceswaplab.data.samples import SampleAccess
from faceswaplab.data.samplers import ManySampler, PairSampler, rank_share, worker_context, worker_init, yaw_bins
from faceswaplab.errors import ConfigError
from faceswaplab.faces.masks import DEFAULT_FOREHEAD
from faceswaplab.faces.occlusion import check_mask_kind, visibility_model

log = logging.getLogger(__name__)

SPLITS_FORMAT = 1
DEFAULT_CACHE_DIR = "~/.cache/faceswaplab/prepared"


class FaceDataModule(SampleAccess, pl.LightningDataModule):
    """Face crops of identities A and B (``mode="pair"``) or of many identities (``mode="many"``).

    A, B: sources (``SyntheticIdentity``, ``PreparedIdentity``, ``RawIdentity``). identities: an identity set
    (``SyntheticIdentities``, ``PreparedIdentities``, ``RawIdentities``) or a list of sources, for many mode
    (pair mode takes its first two when A/B are not given).
    image_size: crop side in pixels (crops are resized, landmarks rescaled). splits: train/val/test fractions.
    seed: fixes splits, shuffling and augmentation. splits_file: reuse saved splits instead of computing them.
    augment: an :class:`~faceswaplab.data.augment.Augment` (or its fields as a dict) applied to the train split.
    cache_dir: where raw inputs are prepared and synthetic renders kept; prepare: default options for
    :func:`faceswaplab.data.preparation.prepare`.
    forehead: mask hull height above the brows (see :func:`~faceswaplab.faces.masks.face_hull_mask`).
    group_size: many mode, training split: batches made of runs of this many samples of one identity (few-shot
    meta-learning episodes; see :class:`~faceswaplab.data.samplers.ManySampler`).
    mask: ``hull`` (the landmark hull), ``segment`` or ``parse`` (the hull less what covers the face: hands,
    hair, glasses; see :mod:`faceswaplab.faces.occlusion`); the batches' ``mask`` keys, which the methods' masked
    losses read.
    yaw_balanced: pair mode, training split: draw each side's faces so that head yaw is flat over `yaw_bins`
    equal-width bins of its range (DeepFaceLab's ``uniform_yaw``: profiles, rare in most footage, are seen as often
    as frontal faces). Yaw is the ground truth of synthetic renders and estimated from the landmarks of other faces
    (:meth:`~faceswaplab.data.datasets.base.FaceSource.yaws`). An epoch keeps its length; rare poses repeat.
    ram_cache_mb: keep loaded samples (renders, decoded crops; before augmentation) in each process's memory up to
    this many megabytes (:class:`~faceswaplab.data.datasets.torch_datasets.SampleCache`); 0: load every time.

    Two synthetic identities in pair mode (batch keys of :mod:`faceswaplab.data.schema`):

    >>> from faceswaplab.data import FaceDataModule, SyntheticIdentity
    >>> dm = FaceDataModule(A=SyntheticIdentity(0, num_samples=20), B=SyntheticIdentity(1, num_samples=20),
    ...                     image_size=32, batch_size=4)
    >>> dm.setup()
    >>> dm.identity_names, {split: len(ds) for split, ds in dm.datasets.items()}
    (['synthetic0-0', 'synthetic0-1'], {'train': 16, 'val': 2, 'test': 2})
    >>> batch = next(iter(dm.train_dataloader()))
    >>> sorted(k for k in batch if k.endswith("_A"))
    ['expression_A', 'identity_A', 'image_A', 'index_A', 'landmarks_A', 'mask_A', 'parts_A', 'pose_A']
    >>> [tuple(batch[k].shape) for k in ("image_A", "landmarks_A", "mask_A", "parts_A")]
    [(4, 3, 32, 32), (4, 68, 2), (4, 1, 32, 32), (4, 2, 32, 32)]
    >>> batch["identity_A"].tolist(), batch["identity_B"].tolist()
    ([0, 0, 0, 0], [1, 1, 1, 1])
    """

    def __init__(
        self,
        A: FaceSource | None = None,
        B: FaceSource | None = None,
        identities: IdentitySet | Sequence[FaceSource] | None = None,
        mode: str = "pair",
        image_size: int = 64,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        persistent_workers: bool = False,
        pin_memory: bool | str = "auto",
        drop_last: bool = True,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        splits_file: str | os.PathLike | None = None,
        augment: Augment | Mapping | None = None,
        cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
        prepare: Mapping | None = None,
        forehead: float = DEFAULT_FOREHEAD,
        group_size: int = 1,
        mask: str = "hull",
        yaw_balanced: bool = False,
        yaw_bins: int = 8,
        ram_cache_mb: float = 0.0,
    ):
        super().__init__()
        if mode not in ("pair", "many"):
            raise ValueError(f"mode must be 'pair' or 'many', got {mode!r}")
        if not 16 <= int(image_size) <= 1024:
            raise ValueError(f"image_size must be within 16..1024, got {image_size}")
        self.A, self.B = A, B
        if identities is not None and not isinstance(identities, IdentitySet):
            identities = list(identities)  # a list (or Hydra ListConfig) of sources
        self.identity_set = identities
        self.mode = mode
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        if pin_memory not in (True, False, "auto"):
            raise ValueError(f"pin_memory must be true, false or 'auto', got {pin_memory!r}")
        self.pin_memory = pin_memory
        self.drop_last = bool(drop_last)
        self.fractions = tuple(float(f) for f in _plain(splits))
        self.seed = int(seed)
        self.splits_file = Path(splits_file).expanduser() if splits_file else None
        augment = _plain(augment)
        self.augment = Augment(**augment) if isinstance(augment, Mapping) else augment
        self.cache_dir = Path(cache_dir).expanduser()
        self.prepare_options = dict(_plain(prepare) or {})
        self.forehead = float(forehead)
        self.group_size = int(group_size)
        self.mask = check_mask_kind(str(mask), "data.mask")
        self.yaw_balanced, self.yaw_bins = bool(yaw_balanced), int(yaw_bins)
        if self.yaw_balanced and (mode != "pair" or self.yaw_bins < 1):
            raise ConfigError(f"data.yaw_balanced: needs mode=pair and yaw_bins >= 1, got mode={mode}, "
                              f"yaw_bins={yaw_bins}")
        self.sample_cache = SampleCache(float(ram_cache_mb)) if ram_cache_mb else None
        self._configure(self.A, self.B, self.identity_set)
        self.sources: list[FaceSource] = []
        self.splits: dict[str, dict[str, list]] = {}
        self.datasets: dict[str, Any] = {}
        self._samplers: dict[str, Sampler] = {}

    # ------------------------------------------------------------------------------------------ preparation

    def _configure(self, *items) -> None:
        for item in items:
            for x in item if isinstance(item, list) else [item]:
                if hasattr(x, "configure"):
                    x.configure(self.cache_dir, self.prepare_options)

    def _inputs(self) -> list:
        """The sources or identity sets this mode reads."""
        if self.mode == "pair":
            if self.A is not None and self.B is not None:
                return [self.A, self.B]
            if self.identity_set is None:
                raise ValueError("pair mode needs sources A and B (or an identity set to take the first two from)")
            return [self.identity_set]
        if self.identity_set is not None:
            return self.identity_set if isinstance(self.identity_set, list) else [self.identity_set]
        if self.A is None or self.B is None:
            raise ValueError("many mode needs `identities` (or sources A and B)")
        return [self.A, self.B]

    def prepare_data(self) -> None:
        """Prepare raw inputs (face detection and alignment) into `cache_dir`; resumable, skipped when done."""
        for x in self._inputs():
            if isinstance(x, IdentitySet):
                x.prepare()
            else:
                x.prepare(self.cache_dir)

    def _resolve_sources(self) -> list[FaceSource]:
        sources: list[FaceSource] = []
        for x in self._inputs():
            sources.extend(x.sources() if isinstance(x, IdentitySet) else [x])
        if self.mode == "pair":
            if len(sources) < 2:
                raise ValueError(f"pair mode needs two identities, found {len(sources)}")
            sources = sources[:2]
        names = [s.name for s in sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"identity names must be unique, got {dup} twice: set `identity` on the sources")
        return sources

    # --------------------------------------------------------------------------------------------- splits

    def setup(self, stage: str | None = None) -> None:
        """Resolve the identities, compute (or load) the splits and build the datasets."""
        if self.datasets:
            return
        if self.mask != "hull":  # missing weights of the occlusion model stop here, before any training
            visibility_model(self.mask)
        # Cheap when already prepared (a fingerprint check); covers direct use without a Trainer.
        self.prepare_data()
        self.sources = self._resolve_sources()
        if self.splits_file is not None:
            self.load_splits(self.splits_file)
        else:
            self.splits = {s.name: s.split(self.fractions, self.seed) for s in self.sources}
        self._check_splits(stage)
        self._build()
        log.info("faces (%s mode, %dpx):\n%s", self.mode, self.image_size, describe(self.sources, self.splits))

    def _check_splits(self, stage: str | None = None) -> None:
        """Refuse, before any training, an empty split that `stage` reads (fit: train and val, test: test, None:
        all) and its fraction asks for: in pair mode an identity with none, in many mode a split with no identity
        that has any. (A benchmark's held-out identities have no training faces, and only its test split is read.)"""
        read = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}.get(stage, SPLITS)
        asked = [sp for sp, f in zip(SPLITS, self.fractions) if f > 0 and sp in read]
        counts = {src.name: {sp: len(self.splits[src.name][sp]) for sp in SPLITS} for src in self.sources}
        if self.mode == "many":
            empty = [sp for sp in asked if not any(c[sp] for c in counts.values())]
            if empty:
                raise ConfigError(f"data: no identity has faces in the {' and '.join(empty)} split (of "
                                  f"{len(counts)} identities, data.splits={list(self.fractions)}): add faces or "
                                  f"change data.splits")
            return
        for src in self.sources:
            empty = [sp for sp in asked if counts[src.name][sp] == 0]
            if empty:
                sizes = ", ".join(f"{sp} {n}" for sp, n in counts[src.name].items())
                raise ConfigError(
                    f"identity {src.name!r} ({src!r}): {sum(counts[src.name].values())} faces split into {sizes} "
                    f"by data.splits={list(self.fractions)}; the {' and '.join(empty)} split is empty: add faces "
                    f"or change data.splits")

    def _build(self) -> None:
        self.datasets = {}
        for split in SPLITS:
            per_id = [
                FaceDataset(src, self.splits[src.name][split], k, self.image_size,
                            self.augment if split == "train" else None, self.forehead, self.mask, self.sample_cache)
                for k, src in enumerate(self.sources)
            ]
            self.datasets[split] = PairDataset(*per_id) if self.mode == "pair" else ManyDataset(per_id)
        self._per_identity = {
            split: (ds.a, ds.b) if self.mode == "pair" else tuple(ds.datasets) for split, ds in self.datasets.items()
        }

    @property
    def identity_names(self) -> list[str]:
        """Names of the identities, indexed by the batches' ``identity`` numbers (after `setup`)."""
        return [s.name for s in self.sources]

    @property
    def num_identities(self) -> int:
        return len(self.sources)

    def save_splits(self, path: str | os.PathLike) -> Path:
        """Write the splits as JSON (``splits.json`` inside `path` when it is a folder); returns the file."""
        from faceswaplab.io import write_json

        if not self.splits:
            raise RuntimeError("save_splits() needs setup() first")
        path = Path(path)
        if path.suffix != ".json":
            path = path / "splits.json"
        write_json(path, {
            "format": SPLITS_FORMAT,
            "seed": self.seed,
            "fractions": list(self.fractions),
            "identities": {s.name: {sp: list(self.splits[s.name][sp]) for sp in SPLITS} for s in self.sources},
            "sources": {s.name: repr(s) for s in self.sources},
        })
        return path

    def load_splits(self, path: str | os.PathLike) -> None:
        """Use the splits of a ``splits.json`` (every identity of this module must be in it)."""
        import json

        path = Path(path)
        if path.is_dir():
            path = path / "splits.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read splits ({e})") from None
        if data.get("format") != SPLITS_FORMAT or "identities" not in data:
            raise ValueError(f"{path}: not a faceswaplab splits file (format {data.get('format')!r})")
        if not self.sources:
            self.sources = self._resolve_sources()
        splits = {}
        for src in self.sources:
            if src.name not in data["identities"]:
                raise ValueError(f"{path}: no splits for identity {src.name!r} (has {sorted(data['identities'])[:10]})")
            known = set(src.sample_ids())
            entry = data["identities"][src.name]
            splits[src.name] = {}
            for sp in SPLITS:
                ids = list(entry.get(sp, []))
                missing = [i for i in ids if i not in known]
                if missing:
                    raise ValueError(f"{path}: {len(missing)} {sp} samples of {src.name!r} no longer exist, "
                                     f"e.g. {missing[0]!r}")
                splits[src.name][sp] = ids
        self.splits = splits
        if self.datasets:
            self._build()

    # ---------------------------------------------------------------------------------------- dataloaders

    def dataset(self, split: str):
        """The dataset of `split` ("train", "val", "test"); items are sampler tuples (see the samplers)."""
        if not self.datasets:
            self.setup()
        return self.datasets[split]

    def sampler(self, split: str, shuffle: bool | None = None) -> Sampler:
        """The sampler of `split` (kept, so its epoch counter persists across dataloaders)."""
        self.dataset(split)  # set up on first use
        shuffle = split == "train" if shuffle is None else shuffle
        key = f"{split}:{shuffle}"
        if key not in self._samplers:
            parts = self._per_identity[split]
            seed = self.seed + SPLITS.index(split) * 1_000_003
            if self.mode == "pair":
                bins = None
                if self.yaw_balanced and split == "train" and shuffle:
                    bins = tuple(yaw_bins(d.source.yaws(d.ids), self.yaw_bins) for d in parts)
                self._samplers[key] = PairSampler(len(parts[0]), len(parts[1]), shuffle, seed, bins)
            else:
                self._samplers[key] = ManySampler([len(d) for d in parts], shuffle, seed, self.group_size)
        return self._samplers[key]

    def dataloader(self, split: str, shuffle: bool | None = None, batch_size: int | None = None,
                   drop_last: bool | None = None) -> DataLoader:
        """A DataLoader over `split` (train: shuffled, augmented, last partial batch dropped)."""
        ds = self.dataset(split)
        train = split == "train"
        bs = batch_size or (self.batch_size if train else self.eval_batch_size)
        sampler = self.sampler(split, shuffle)
        trainer = getattr(self, "trainer", None)
        if train and trainer is not None:
            sampler = self._trainer_sampler(sampler, trainer)
        drop = (self.drop_last and train and len(sampler) >= bs) if drop_last is None else drop_last
        # Under DDP the workers start from a fork server (see worker_context); elsewhere they are forked, which
        # needs no `if __name__ == "__main__"` guard in the user's script and starts faster.
        distributed = trainer is not None and trainer.world_size > 1
        return DataLoader(
            ds,
            batch_size=bs,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
            pin_memory=self._pin(),
            drop_last=drop,
            worker_init_fn=worker_init if self.num_workers > 0 else None,
            multiprocessing_context=worker_context() if self.num_workers > 0 and distributed else None,
        )

    def _pin(self) -> bool:
        """Page-locked batches (so the copy to the GPU can overlap the step): ``auto`` pins for CUDA trainers."""
        if self.pin_memory != "auto":
            return bool(self.pin_memory)
        trainer = self.trainer  # None outside a Trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    @staticmethod
    def _trainer_sampler(sampler: Sampler, trainer: pl.Trainer) -> Sampler:
        """The training sampler under a Trainer: each epoch's order is drawn with the epoch Lightning is in, and
        under DDP each rank takes its share of that order, with no second shuffle.

        DataLoader workers prefetch, so an epoch's order is drawn as its iterator is made, which Lightning does
        before it calls ``set_epoch``: a sampler counting epochs itself would draw epoch 0's order again after a
        resume, and so would the shuffling wrapper Lightning puts around a sampler under DDP.
        """
        sampler.epoch_of = lambda: trainer.fit_loop.epoch_progress.current.processed  # what set_epoch will pass
        if trainer.world_size <= 1:
            return sampler
        return rank_share(sampler, trainer.world_size, trainer.global_rank)  # few-shot episodes kept whole

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train")

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")
