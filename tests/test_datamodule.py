"""FaceDataModule: batch schema, splits, unpaired sampling, prepared/raw faces, workers and Hydra configs."""

import json
import shutil

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from faceswaplab.config import CONFIG_DIR
from faceswaplab.data import (
    Augment,
    FaceDataModule,
    PreparedIdentities,
    PreparedIdentity,
    RawIdentity,
    SyntheticIdentities,
    SyntheticIdentity,
)
from faceswaplab.data import schema as S
from faceswaplab.data.datasets import split_counts
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.images import scale_landmarks
from faceswaplab.io import write_image

AUG = Augment(flip=0.5, rotate=5, scale=0.05, translate=0.03, brightness=0.1, contrast=0.1, saturation=0.1)


def synthetic_pair(n_a=40, n_b=20, **kw) -> FaceDataModule:
    kw.setdefault("image_size", 32)
    kw.setdefault("batch_size", 4)
    return FaceDataModule(A=SyntheticIdentity(0, n_a), B=SyntheticIdentity(1, n_b), **kw)


def check_fields(batch: dict, side: str | None, n: int, size: int, synthetic: bool):
    k = lambda name: S.key(name, side)  # noqa: E731
    img, lm, mask, parts = batch[k(S.IMAGE)], batch[k(S.LANDMARKS)], batch[k(S.MASK)], batch[k(S.PARTS)]
    assert img.shape == (n, 3, size, size) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1 and img.std() > 0.05
    assert lm.shape == (n, 68, 2) and lm.dtype == torch.float32
    inside = ((lm >= -0.5) & (lm <= size - 0.5)).all(-1).float().mean()
    assert inside > 0.95  # pixel coordinates of this crop size (augmentation may push a few points out)
    assert mask.shape == (n, 1, size, size) and mask.dtype == torch.float32
    assert parts.shape == (n, 2, size, size) and parts.dtype == torch.float32
    for m in (mask, parts):
        assert m.min() >= 0 and m.max() <= 1
    # The face mask covers the nose tip; the eye part the eye corners; the mouth part the mouth centre.
    idx = torch.arange(n)

    def at(t, points):
        p = points.round().long().clamp(0, size - 1)
        return t[idx, p[:, 1], p[:, 0]]

    assert (at(mask[:, 0], lm[:, 30]) > 0.5).float().mean() >= 0.9
    assert (at(parts[:, S.PART_MOUTH], lm[:, 48:68].mean(1)) > 0.5).float().mean() >= 0.9
    assert (parts[:, S.PART_EYES].sum((1, 2)) > 0).all() and (mask.sum((1, 2, 3)) > parts.sum((1, 2, 3))).all()
    assert batch[k(S.IDENTITY)].shape == (n,) and batch[k(S.IDENTITY)].dtype == torch.int64
    assert batch[k(S.INDEX)].shape == (n,) and batch[k(S.INDEX)].dtype == torch.int64
    if synthetic:
        assert batch[k(S.POSE)].shape == (n, 3) and batch[k(S.POSE)].dtype == torch.float32
        assert batch[k(S.EXPRESSION)].shape == (n, 4) and batch[k(S.EXPRESSION)].dtype == torch.float32
        assert batch[k(S.POSE)].abs().max() <= 60 and 0 <= batch[k(S.EXPRESSION)].min()


@pytest.mark.parametrize("size", [32, 64])
def test_pair_batch_schema(size):
    dm = synthetic_pair(image_size=size, augment=AUG)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    fields = (S.IMAGE, S.LANDMARKS, S.MASK, S.PARTS, S.IDENTITY, S.INDEX, S.POSE, S.EXPRESSION)
    assert set(batch) == {S.key(f, s) for f in fields for s in S.SIDES}
    for side in S.SIDES:
        check_fields(batch, side, 4, size, synthetic=True)
    assert (batch["identity_A"] == 0).all() and (batch["identity_B"] == 1).all()
    assert dm.identity_names == ["synthetic0-0", "synthetic0-1"]
    val = next(iter(dm.val_dataloader()))
    check_fields(val, "A", 4, size, synthetic=True)


@pytest.mark.parametrize("size", [32, 64])
def test_many_batch_schema(size):
    dm = FaceDataModule(identities=SyntheticIdentities(num_identities=4, num_samples=10), mode="many",
                        image_size=size, batch_size=8, augment=AUG)
    dm.setup()
    assert dm.num_identities == 4
    loader = dm.train_dataloader()
    batches = list(loader)
    fields = (S.IMAGE, S.LANDMARKS, S.MASK, S.PARTS, S.IDENTITY, S.INDEX, S.POSE, S.EXPRESSION)
    assert set(batches[0]) == set(fields)
    check_fields(batches[0], None, 8, size, synthetic=True)
    # One epoch visits every training sample of every identity once (32 = 4 x 8; 8 per batch, none dropped).
    seen = torch.cat([torch.stack([b[S.IDENTITY], b[S.INDEX]], 1) for b in batches])
    assert len(seen) == 32 and len({tuple(r) for r in seen.tolist()}) == 32
    assert set(seen[:, 0].tolist()) == {0, 1, 2, 3}


def test_synthetic_matches_renderer_and_eval_is_unaugmented():
    dm = synthetic_pair(image_size=48, augment=AUG)
    dm.setup()
    ds = dm.dataset("test")
    item = ds[(0, 0, -1)]  # test sample 0 of A and of B, unaugmented
    n_train, n_val, _ = split_counts(40, (0.8, 0.1, 0.1))
    r = SyntheticFaces(seed=0, num_identities=8).sample(0, n_train + n_val, size=48)
    expected = torch.from_numpy(r.image).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(item["image_A"], expected, atol=1e-6)
    assert torch.allclose(item["landmarks_A"], torch.from_numpy(r.landmarks))
    assert torch.allclose(item["pose_A"], torch.from_numpy(r.pose))
    # The same train sample with two augmentation seeds differs; with the same seed it is identical.
    tr = dm.dataset("train")
    a, b, c = tr[(3, 3, 100)], tr[(3, 3, 100)], tr[(3, 3, 101)]
    assert torch.equal(a["image_A"], b["image_A"]) and not torch.equal(a["image_A"], c["image_A"])


def test_splits_disjoint_reproducible_and_round_trip(tmp_path):
    dm = synthetic_pair(n_a=50, n_b=30)
    dm.setup()
    for name, sp in dm.splits.items():
        sets = [set(sp[s]) for s in ("train", "val", "test")]
        assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
        assert sum(map(len, sets)) == (50 if name.endswith("-0") else 30)
        assert min(sp["val"]) > max(sp["train"]) and min(sp["test"]) > max(sp["val"])  # disjoint index ranges
    again = synthetic_pair(n_a=50, n_b=30)
    again.setup()
    assert again.splits == dm.splits
    path = dm.save_splits(tmp_path)
    assert path == tmp_path / "splits.json"
    saved = json.loads(path.read_text())
    assert saved["identities"]["synthetic0-0"]["test"] == dm.splits["synthetic0-0"]["test"]
    # A module with other fractions reuses the saved splits through `splits_file`.
    other = synthetic_pair(n_a=50, n_b=30, splits=(0.5, 0.25, 0.25), splits_file=path)
    other.setup()
    assert other.splits == dm.splits
    b1 = next(iter(dm.test_dataloader()))
    b2 = next(iter(other.test_dataloader()))
    assert torch.equal(b1["image_A"], b2["image_A"])
    # Splits of another identity are refused with a clear message.
    stranger = FaceDataModule(A=SyntheticIdentity(2, 50), B=SyntheticIdentity(1, 30), splits_file=path)
    with pytest.raises(ValueError, match="synthetic0-2"):
        stranger.setup()


def test_pair_sampling_is_unpaired_and_cycles_the_shorter_side():
    dm = synthetic_pair(n_a=50, n_b=20, splits=(1.0, 0.0, 0.0))
    dm.setup()
    sampler = dm.sampler("train")
    sampler.set_epoch(0)
    items = list(sampler)
    assert len(items) == 50 == len(dm.dataset("train"))
    ia, ib, seeds = map(np.array, zip(*items))
    assert sorted(ia) == list(range(50))  # the longer side: each sample once
    assert sorted(np.bincount(ib, minlength=20).tolist()) == [2] * 10 + [3] * 10
    assert sorted(ib[:20]) == list(range(20)) and sorted(ib[20:40]) == list(range(20))  # fresh permutations
    assert len(set(seeds.tolist())) > 45
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    sampler.set_epoch(0)
    assert list(sampler) == items and epoch1 != items  # reproducible per epoch, different across epochs
    # Unpaired: which B goes with which A changes between epochs.
    pairs0 = {(a, b) for a, b, _ in items}
    pairs1 = {(a, b) for a, b, _ in epoch1}
    assert len(pairs0 & pairs1) < 10


def test_num_workers_give_identical_batches():
    def batches(workers):
        dm = synthetic_pair(n_a=24, n_b=12, image_size=32, batch_size=4, augment=AUG, num_workers=workers,
                            persistent_workers=True)
        dm.setup()
        out = []
        for _ in range(2):  # two epochs: the epoch counter lives in the main process
            loader = dm.train_dataloader()
            out.extend(list(loader)[:2])
        return out

    b0, b2 = batches(0), batches(2)
    assert len(b0) == len(b2) == 4
    for x, y in zip(b0, b2):
        assert x.keys() == y.keys()
        for k in x:
            assert torch.equal(x[k], y[k]), k
    assert not torch.equal(b0[0]["image_A"], b0[2]["image_A"])  # the second epoch is another draw


def test_test_pairs_are_fixed_held_out_and_cross_identity():
    dm = FaceDataModule(identities=SyntheticIdentities(num_identities=5, num_samples=20), mode="many",
                        image_size=32)
    dm.setup()
    pairs = dm.test_pairs(12, seed=3)
    assert pairs == dm.test_pairs(12, seed=3) and pairs != dm.test_pairs(12, seed=4)
    assert all(s.identity != t.identity for s, t in pairs)
    batch = dm.load([s for s, _ in pairs])
    assert batch["image"].shape == (12, 3, 32, 32)
    assert batch["identity"].tolist() == [s.identity for s, _ in pairs]
    test_ids = {(k, i) for k in range(5) for i in range(len(dm.splits[dm.identity_names[k]]["test"]))}
    assert {tuple(s) for s, _ in pairs} <= test_ids
    pair_dm = synthetic_pair(n_a=30, n_b=30)
    pp = pair_dm.test_pairs(4)
    assert [(s.identity, t.identity) for s, t in pp] == [(0, 1), (1, 0), (0, 1), (1, 0)]


def test_modes_fall_back_on_each_others_inputs():
    # Pair mode over an identity set takes its first two; many mode without a set uses A and B.
    pair = FaceDataModule(identities=SyntheticIdentities(num_identities=3, num_samples=10), mode="pair")
    pair.setup()
    assert pair.identity_names == ["synthetic0-0", "synthetic0-1"]
    many = synthetic_pair(n_a=10, n_b=10, mode="many")
    many.setup()
    assert many.num_identities == 2 and "image" in next(iter(many.train_dataloader()))
    with pytest.raises(ValueError, match="pair mode needs"):
        FaceDataModule(A=SyntheticIdentity(0, 10)).setup()


def test_lightning_trainer_consumes_the_module():
    class Probe(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def training_step(self, batch, _):
            self.seen.append(batch["index_A"].clone())
            return (self.w * batch["image_A"].mean()).sum() + self.w.square().sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = synthetic_pair(n_a=20, n_b=10, image_size=32, batch_size=4)
    probe = Probe()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(probe, datamodule=dm)
    assert len(probe.seen) == 8  # 16 train samples / 4, two epochs
    first, second = torch.cat(probe.seen[:4]), torch.cat(probe.seen[4:])
    assert sorted(first.tolist()) == list(range(16)) and not torch.equal(first, second)


# ---------------------------------------------------------------------------------------- prepared faces


def make_prepared(folder, identity="anna", frames=40, size=96, video=True, fps=10.0):
    """A hand-made prepared folder: synthetic crops with an index.jsonl in the documented format (`fps`: the
    video's frame rate written to the index; None leaves it out, as older indexes do)."""
    r = SyntheticFaces(seed=5, num_identities=2)
    rows = []
    for f in range(frames):
        s = r.sample(0, f, size=size)
        crop = f"faces/{identity}_f{f:06d}_0.png"
        write_image(folder / crop, s.image)
        rows.append({"crop": crop, "source": f"/videos/{identity}.mp4" if video else f"/photos/{identity}_{f}.jpg",
                     "identity": identity, "frame": f if video else None,
                     **({"fps": fps} if video and fps else {}), "landmarks_crop": s.landmarks.tolist(), "size": size})
    (folder / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    return rows


def test_prepared_identity_resizes_and_splits_video_blocks(tmp_path):
    rows = make_prepared(tmp_path / "anna", frames=120, size=96)
    make_prepared(tmp_path / "ben", identity="ben", frames=12, size=96, video=False)
    src = PreparedIdentity(tmp_path / "anna", split_block_s=1.0, split_gap_s=0.3)
    assert src.name == "anna" and len(src.sample_ids()) == 120
    sp = src.split((0.8, 0.1, 0.1), seed=0)
    assert sp == src.split((0.8, 0.1, 0.1), seed=0) and sp != src.split((0.8, 0.1, 0.1), seed=1)

    dm = FaceDataModule(A=src, B=PreparedIdentity(tmp_path / "ben"), image_size=48, batch_size=3)
    dm.setup()
    assert dm.identity_names == ["anna", "ben"]
    assert [len(dm.splits["ben"][s]) for s in ("train", "val", "test")] == [10, 1, 1]  # one group per photo
    batch = next(iter(dm.train_dataloader()))
    check_fields(batch, "A", 3, 48, synthetic=False)
    assert S.key(S.POSE, "A") not in batch
    # Landmarks are rescaled with the crop: 96 px index coordinates -> 48 px batch coordinates.
    item = dm.dataset("test").a[0]
    rec = {r["crop"]: r for r in rows}[dm.splits["anna"]["test"][0]]
    expected = scale_landmarks(torch.tensor(rec["landmarks_crop"]), 96, 48)
    assert torch.allclose(item["landmarks"], expected, atol=1e-4)


def _closest_train_seconds(src, sp) -> float:
    times = src.frame_times()
    train = np.array([times[c] for c in sp["train"]])
    return min(np.abs(train - times[c]).min() for c in sp["test"] + sp["val"])


def write_video_index(folder, frames, fps, source="/videos/anna.mp4"):
    """An index.jsonl of `frames` frames of one video (no crops: splitting reads only the index)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"crop": f"faces/anna_f{f:06d}_0.png", "source": source, "identity": "anna", "frame": f,
             **({"fps": fps} if fps else {}), "landmarks_crop": []} for f in range(frames)]
    (folder / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    return rows


@pytest.mark.parametrize("block, gap", [(4.0, 2.0), (3.0, 1.0), (1.0, 1.5)])
def test_video_splits_keep_held_out_frames_seconds_from_training_frames(tmp_path, block, gap):
    # 30 fps, 40 s: a frame count of 60 is 2 s here, but the split reads the index's frame rate.
    write_video_index(tmp_path / "anna", 1200, 30.0)
    src = PreparedIdentity(tmp_path / "anna", split_block_s=block, split_gap_s=gap)
    sp = src.split((0.6, 0.2, 0.2), seed=0)
    assert sp["test"] and sp["train"]
    assert _closest_train_seconds(src, sp) >= gap
    assert sp == PreparedIdentity(tmp_path / "anna", split_block_s=block, split_gap_s=gap).split((0.6, 0.2, 0.2), 0)


def test_video_splits_read_the_frame_rate_of_the_video_or_warn(tmp_path, media, caplog):
    clip = media / "videos" / "lp_d18_man_expressions.mp4"  # 30 fps
    rows = write_video_index(tmp_path / "man", 216, None, str(clip))
    src = PreparedIdentity(tmp_path / "man", split_block_s=2.0, split_gap_s=0.5)
    assert src.frame_times()["faces/anna_f000090_0.png"] == pytest.approx(3.0)
    assert _closest_train_seconds(src, src.split((0.6, 0.2, 0.2), 0)) >= 0.5
    rows[0]["source"] = str(tmp_path / "gone.mp4")
    (tmp_path / "man" / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    with caplog.at_level("WARNING"):
        PreparedIdentity(tmp_path / "man").frame_times()
    assert "assumed 30 fps" in caplog.text and "gone.mp4" in caplog.text


def test_prepared_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.jsonl"):
        PreparedIdentity(tmp_path).sample_ids()
    (tmp_path / "index.jsonl").write_text('{"crop": "a.png", "landmarks_crop": []}\nnot json\n')
    with pytest.raises(ValueError, match=r"index.jsonl:2"):
        PreparedIdentity(tmp_path).sample_ids()
    make_prepared(tmp_path / "x", frames=3)
    (tmp_path / "x" / "faces" / "anna_f000001_0.png").write_bytes(b"broken")
    ds = FaceDataModule(A=PreparedIdentity(tmp_path / "x"), B=PreparedIdentity(tmp_path / "x", identity="anna"))
    with pytest.raises(ValueError, match="unique"):
        ds.setup()
    src = PreparedIdentity(tmp_path / "x")
    with pytest.raises(Exception, match="anna_f000001_0.png"):
        src.load("faces/anna_f000001_0.png", 32)


def test_prepared_identities_many_mode(tmp_path):
    make_prepared(tmp_path, identity="anna", frames=10)
    rows = [json.loads(x) for x in (tmp_path / "index.jsonl").read_text().splitlines()]
    r = SyntheticFaces(seed=5, num_identities=2)
    for f in range(6):
        s = r.sample(1, f, size=96)
        crop = f"faces/ben_{f}.png"
        write_image(tmp_path / crop, s.image)
        rows.append({"crop": crop, "source": f"/p/ben_{f}.jpg", "identity": "ben", "frame": None,
                     "landmarks_crop": s.landmarks.tolist()})
    (tmp_path / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    dm = FaceDataModule(identities=PreparedIdentities(tmp_path), mode="many", image_size=32, batch_size=4)
    dm.setup()
    assert dm.identity_names == ["anna", "ben"]
    batch = next(iter(dm.train_dataloader()))
    check_fields(batch, None, 4, 32, synthetic=False)


@pytest.mark.slow
def test_raw_photos_are_prepared_once_into_the_cache(tmp_path, media):
    """Real photos through faceswaplab.prepare (dlib), cached by input path and options."""
    photos = tmp_path / "photos"
    shutil.copytree(media / "photos" / "obama", photos / "obama")
    shutil.copytree(media / "photos" / "biden", photos / "biden")
    opts = {"size": 96, "workers": 1, "progress": False}
    make = lambda: FaceDataModule(  # noqa: E731
        A=RawIdentity(photos / "obama"), B=RawIdentity(photos / "biden", identity="joe"), image_size=64,
        batch_size=2, cache_dir=tmp_path / "cache", prepare=opts, splits=(0.5, 0.0, 0.5))  # two photos: no val
    dm = make()
    dm.prepare_data()
    dm.setup()
    assert dm.identity_names == ["obama", "joe"]
    assert sum(map(len, dm.splits["obama"].values())) == 4 and sum(map(len, dm.splits["joe"].values())) == 2
    assert dm.splits["joe"]["train"] and dm.splits["joe"]["test"]  # two photos: one trains, one tests
    batch = next(iter(dm.train_dataloader()))
    check_fields(batch, "A", 2, 64, synthetic=False)
    index = dm.sources[0].folder / "index.jsonl"
    stamp = index.stat().st_mtime_ns
    again = make()
    again.setup()  # prepares nothing: the cache is complete for this input and these options
    assert index.stat().st_mtime_ns == stamp and again.splits == dm.splits
    # Other output options prepare into another cache folder.
    other = FaceDataModule(A=RawIdentity(photos / "obama"), B=RawIdentity(photos / "biden"),
                           cache_dir=tmp_path / "cache", prepare={**opts, "size": 80})
    assert other.A.folder != dm.sources[0].folder


# ------------------------------------------------------------------------------------------ hydra configs


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("synthetic", ["A.num_samples=20", "image_size=32", "num_workers=0"]),
        ("synthetic", ["mode=many", "A.num_samples=10", "A.num_identities=3", "image_size=32", "num_workers=0"]),
        ("folders", ["A.path=/photos/alice", "B.path=/photos/bob"]),
        ("video", ["A.path=/v/alice.mp4", "B.path=/v/bob.mp4"]),
        ("prepared", ["A.path=/data/alice", "B.path=/data/bob"]),
        ("identities", ["identities.path=/data/celeb"]),
        ("pretrain", ["A.identities.num_identities=3", "A.identities.num_samples=10"]),
    ],
)
def test_hydra_configs_instantiate(name, overrides, tmp_path):
    extra = [f"cache_dir={tmp_path}"] if name in ("folders", "video", "identities") else []
    with initialize_config_dir(CONFIG_DIR + "/data", version_base="1.3"):
        cfg = compose(name, overrides=overrides + extra)
    dm = instantiate(cfg)
    assert isinstance(dm, FaceDataModule) and isinstance(dm.augment, Augment)
    if name == "synthetic":
        dm.setup()
        batch = next(iter(dm.train_dataloader()))
        if dm.mode == "many":
            assert dm.num_identities == 3 and batch["image"].shape[-1] == 32
        else:
            assert batch["image_A"].shape == (16, 3, 32, 32)
    if name == "pretrain":  # both sides: every identity of the population
        assert dm.A.name != dm.B.name and list(dm.A.members) == list(dm.B.members) == [
            "synthetic2-0", "synthetic2-1", "synthetic2-2"]
    if name in ("folders", "video"):
        assert dm.A.prepare_options["size"] == 256 and dm.A.folder.parent == tmp_path
    if name == "video":
        assert dm.A.prepare_options["fps"] == 10


def test_an_empty_split_is_refused_before_training_in_one_line():
    from faceswaplab.errors import ConfigError, one_line

    with pytest.raises(ConfigError) as e:
        synthetic_pair(2, 30).setup()  # 2 faces cannot fill train, val and test
    assert one_line(e.value).count("\n") == 0
    assert "identity 'synthetic0-0'" in str(e.value) and "val split is empty" in str(e.value)
    synthetic_pair(2, 30, splits=(0.5, 0.5, 0.0)).setup()  # a split asked to be empty may be


def test_ddp_shares_keep_few_shot_runs_whole_and_cover_the_epoch():
    from faceswaplab.data.samplers import ManySampler, rank_share

    sampler = ManySampler([7, 5, 9], shuffle=True, seed=3, group_size=3)
    shares = []
    for r in range(2):  # each rank is a process of its own, drawing the same epoch's order
        sampler.epoch = 0
        shares.append(list(rank_share(sampler, 2, r)))
    assert len(shares[0]) == len(shares[1]) == len(rank_share(sampler, 2, 0))
    for share in shares:
        assert len(share) % 3 == 0
        runs = [share[i:i + 3] for i in range(0, len(share), 3)]
        assert all(len({k for k, _, _ in run}) == 1 for run in runs)  # one identity per episode
    everything = {(k, i) for k, i, _ in list(ManySampler([7, 5, 9], True, 3, 3))}
    assert {(k, i) for share in shares for k, i, _ in share} == everything


@pytest.mark.slow
def test_held_out_raw_photos_in_a_synthetic_identity_set_are_prepared(tmp_path, media):
    """A real-face pair held out of a many-identity synthetic training set (the benchmark's held_out protocol)."""
    from faceswaplab.data import RawIdentity, SyntheticIdentities

    ids = SyntheticIdentities(num_identities=3, num_samples=20, held_out=[RawIdentity(media / "photos" / "obama")])
    dm = FaceDataModule(identities=ids, mode="many", image_size=32, batch_size=4, cache_dir=tmp_path / "cache",
                        prepare={"size": 64, "workers": 1, "progress": False})
    dm.setup("fit")
    held = dm.splits["obama"]
    assert held["train"] == [] and held["val"] and held["test"]  # its training photos are left unused
    assert len(dm.identity_names) == 4 and all(dm.splits[n]["train"] for n in dm.identity_names[1:])
