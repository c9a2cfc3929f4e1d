"""The in-memory sample cache (cached items equal freshly loaded ones, the budget holds, workers start empty) and
the synthetic renders kept on disk."""

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
    # Room for two 32 px samples: the image and its mask, eyes and mouth maps (3 + 3 bytes a pixel), small arrays.
    cache = SampleCache(max_mb=2.5 * 32 * 32 * 6 / 2**20)
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


# ------------------------------------------------------------------------------------ renders kept on disk


def _stored(tmp_path, occlusion=0.0, identity=2):
    src = SyntheticIdentity(identity, num_samples=8, occlusion=occlusion)
    src.configure(tmp_path)
    return src


def test_stored_renders_equal_fresh_ones_and_are_read_back(tmp_path):
    for occlusion in (0.0, 1.0):  # with an occluder the samples carry `visible` too
        fresh = SyntheticIdentity(2, num_samples=8, occlusion=occlusion)
        first, second = _stored(tmp_path, occlusion), _stored(tmp_path, occlusion)
        for i in range(3):
            want = fresh.load(i, 32)
            for got in (first.load(i, 32), second.load(i, 32)):  # made and written, then read back
                assert got.keys() == want.keys()
                for k in want:
                    assert np.array_equal(got[k], want[k]) and got[k].dtype == want[k].dtype, (occlusion, i, k)
    files = sorted(tmp_path.glob("renders/*/population0-of8*/2/32/*.bin"))
    assert len(files) == 6 and not list(tmp_path.rglob("*.tmp*"))
    # A later run reads the file, not the renderer: a file changed in place (same length) is what it gets back.
    path = next(tmp_path.glob("renders/*/population0-of8/2/32/0.bin"))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    fresh_pixel = SyntheticIdentity(2).load(0, 32)["image"][-1, -1, -1]
    assert _stored(tmp_path).load(0, 32)["image"][-1, -1, -1] == fresh_pixel ^ 0xFF


def test_a_cut_file_is_rendered_again_and_an_unwritable_store_still_renders(tmp_path, caplog):
    src = _stored(tmp_path)
    want = src.load(1, 32)
    path = next(tmp_path.glob("renders/*/population0-of8/2/32/1.bin"))
    path.write_bytes(path.read_bytes()[:100])  # an interrupted copy, a full disk
    assert np.array_equal(_stored(tmp_path).load(1, 32)["image"], want["image"])
    assert path.stat().st_size > 100  # rewritten whole
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's folder should be")
    src = SyntheticIdentity(2, num_samples=8)
    src.configure(blocked)
    with caplog.at_level("WARNING"):
        for i in range(2):
            assert np.array_equal(src.load(i, 32)["image"], SyntheticIdentity(2).load(i, 32)["image"])
    assert sum("not kept on disk" in r.getMessage() for r in caplog.records) == 1  # one warning, then quiet
    off = SyntheticIdentity(2, num_samples=8, store=False)
    off.configure(tmp_path / "off")
    off.load(0, 32)
    assert not (tmp_path / "off").exists()


def test_augmented_masks_follow_the_image_and_match_masks_drawn_from_the_moved_landmarks():
    from faceswaplab.faces.masks import face_hull_mask_np, region_masks_np

    aug = Augment(flip=0.5, rotate=10.0, scale=0.05, translate=0.03, brightness=0.1, contrast=0.1, saturation=0.1)
    ds = FaceDataset(SyntheticIdentity(3, num_samples=8), list(range(8)), 0, image_size=64, augment=aug,
                     cache=SampleCache(16))
    flipped = 0
    for i in range(8):
        s = ds[(i, 50 + i)]
        lm = s["landmarks"].numpy()
        redrawn = [face_hull_mask_np(lm, 64), *region_masks_np(lm, 64)]
        for got, want, least in zip([s["mask"][0], *s["parts"]], redrawn, (0.95, 0.8, 0.8)):  # eyes: few pixels
            a, b = got.numpy() > 0.5, want > 0.5
            assert (a & b).sum() / (a | b).sum() > least, i
        flipped += int(lm[36, 0] > lm[45, 0])  # the outer eye corner labels stay on their sides after a flip
    assert flipped == 0
    assert torch.equal(ds[(2, 7)]["mask"], ds[(2, 7)]["mask"])  # the same seed, the same geometry


def test_a_batch_fetched_at_once_equals_its_items_fetched_one_by_one():
    """The DataLoader fetches a batch with ``__getitems__`` (one augmentation call per side); every sample must be
    what fetching it alone gives, for unaugmented items, pairs, many identities and ground-truth visible masks."""
    from faceswaplab.data.datasets import ManyDataset, PairDataset

    def ds(identity, occlusion=0.0):
        return FaceDataset(SyntheticIdentity(identity, num_samples=8, occlusion=occlusion, store=False),
                           list(range(8)), identity, image_size=32,
                           augment=Augment(rotate=8, scale=0.05, brightness=0.2), cache=SampleCache(16))

    cases = [
        (ds(0, occlusion=1.0), [(0, 5), (3, -1), (2, 7), (2, 8)]),
        (PairDataset(ds(0), ds(1)), [(0, 1, 4), (5, 2, 9), (7, 7, -1)]),
        (ManyDataset([ds(0), ds(1), ds(2)]), [(2, 1, 3), (0, 4, 3), (2, 5, 6), (1, 0, -1)]),
    ]
    for dataset, items in cases:
        together = dataset.__getitems__(items)
        for item, got in zip(items, together):
            alone = dataset[item]
            assert got.keys() == alone.keys()
            for k in got:
                assert torch.equal(got[k], alone[k]), (type(dataset).__name__, item, k)
    assert "visible" in cases[0][0][(0, 5)]  # the occluded source carries its visible mask through
    assert not torch.equal(cases[0][0][(2, 7)]["image"], cases[0][0][(2, 8)]["image"])
