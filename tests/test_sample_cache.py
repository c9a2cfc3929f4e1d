"""The in-memory sample cache: cached items equal freshly loaded ones, the budget holds, workers start empty."""

import pickle

import numpy as np
import torch

from faceswaplab.data import Augment, FaceDataModule, SyntheticIdentity
from faceswaplab.data.datasets import FaceDataset, SampleCache


def _dataset(cache):
    return FaceDataset(SyntheticIdentity(0, num_samples=12), list(range(12)), 0, image_size=32,
                       augment=Augment(warp=0.02), cache=cache)


def test_cached_items_equal_fresh_ones_in_every_epoch():
    fresh, cached = _dataset(None), _dataset(SampleCache(64))
    for epoch in range(3):  # the first pass fills the cache, the later ones read it
        for i in range(12):
            a, b = fresh[(i, 100 * epoch + i)], cached[(i, 100 * epoch + i)]
            assert a.keys() == b.keys()
            for k in a:
                assert torch.equal(a[k], b[k]), (epoch, i, k)
    assert len(cached.cache.items) == 12


def test_cached_arrays_are_read_only_and_the_budget_holds():
    cache = SampleCache(max_mb=2.5 * 32 * 32 * 3 / 2**20)  # room for two 32 px images and their small arrays
    ds = _dataset(cache)
    for i in range(5):
        ds[(i, i)]
    assert len(cache.items) == 2 and cache.bytes <= cache.max_bytes
    raw = next(iter(cache.items.values()))
    assert not raw["image"].flags.writeable
    assert all(not v.flags.writeable for v in raw.values() if isinstance(v, np.ndarray))


def test_a_pickled_cache_starts_empty_and_the_data_module_shares_one():
    cache = SampleCache(16)
    _dataset(cache)[(0, 0)]
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.items == {} and copy.bytes == 0 and copy.max_bytes == cache.max_bytes
    dm = FaceDataModule(A=SyntheticIdentity(0, num_samples=10), B=SyntheticIdentity(1, num_samples=10),
                        image_size=32, batch_size=2, ram_cache_mb=8)
    dm.setup("fit")
    caches = {id(ds.cache) for split in ("train", "val") for ds in (dm.datasets[split].a, dm.datasets[split].b)}
    assert caches == {id(dm.sample_cache)}
    next(iter(dm.train_dataloader()))
    assert len(dm.sample_cache.items) == 4  # two faces of each side
