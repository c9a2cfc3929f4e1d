"""Yaw-balanced (DeepFaceLab's uniform_yaw) sampling of the pair data module."""

import numpy as np
import pytest
import torch

from faceswaplab.data import FaceDataModule, PreparedIdentity, SyntheticIdentity
from faceswaplab.data.datasets.base import FaceSource
from faceswaplab.data.samplers import rank_share, yaw_bins
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.errors import ConfigError
from test_datamodule import make_prepared


class MostlyLeft(SyntheticIdentity):
    """Renders of one identity, all those turned left (yaw < -15 degrees) and only one in six of the others."""

    def split(self, fractions, seed):
        yaw = self.yaws(range(self.num_samples))
        keep = [i for i in range(self.num_samples) if yaw[i] < -15 or i % 6 == 0]
        return {"train": keep[:-4], "val": keep[-4:-2], "test": keep[-2:]}


def _module(**kw):
    return FaceDataModule(A=MostlyLeft(0, num_samples=300), B=SyntheticIdentity(1, num_samples=300), image_size=32,
                          batch_size=4, num_workers=0, augment=None, **kw)


def _unevenness(yaws, edges):
    """Total-variation distance of the yaws' histogram over `edges` from the flat one."""
    counts = np.histogram(yaws, edges)[0]
    return 0.5 * np.abs(counts / counts.sum() - 1 / len(counts)).sum()


def test_yaw_balanced_batches_are_flat_over_yaw_where_the_data_is_skewed():
    dm = _module(yaw_balanced=True)
    dm.setup()
    a = dm.datasets["train"].a
    data_yaw = a.source.yaws(a.ids)
    edges = np.linspace(data_yaw.min(), data_yaw.max() + 1e-6, 9)
    order = list(dm.sampler("train"))
    drawn = data_yaw[[i for i, _, _ in order]]
    assert len(order) == len(dm.datasets["train"])  # the epoch keeps its length
    assert _unevenness(data_yaw, edges) > 0.25
    assert _unevenness(drawn, edges) < 0.03
    # The batches hold what the sampler drew: the renders' ground-truth yaw.
    dm.sampler("train").set_epoch(0)
    batch = next(iter(dm.train_dataloader()))
    torch.testing.assert_close(batch["pose_A"][:, 0].double(), torch.from_numpy(drawn[:4]), atol=1e-4, rtol=0)
    # Unbalanced, the drawn yaws are as skewed as the data.
    plain = _module()
    plain.setup()
    assert _unevenness(data_yaw[[i for i, _, _ in plain.sampler("train")]], edges) > 0.25


def test_yaw_balanced_order_is_fixed_by_seed_and_epoch_and_shared_out_under_ddp():
    dm, again = _module(yaw_balanced=True), _module(yaw_balanced=True)
    s, t = dm.sampler("train"), again.sampler("train")
    s.set_epoch(3)
    t.set_epoch(3)
    epoch3 = list(s)
    assert epoch3 == list(t)  # a resumed run draws the same order
    assert epoch3 != list(s)  # and the next epoch another one
    s.epoch_of = lambda: 3  # as under a Trainer (FaceDataModule._trainer_sampler): every rank draws epoch 3
    shares = [list(rank_share(s, 2, r)) for r in (0, 1)]
    assert [x for pair in zip(*shares) for x in pair][: len(epoch3)] == epoch3


def test_default_sampling_is_unchanged_and_many_mode_refuses_the_option():
    from faceswaplab.data.samplers import PairSampler

    dm = _module()
    dm.setup()
    n_a, n_b = len(dm.datasets["train"].a), len(dm.datasets["train"].b)
    assert dm.sampler("train").bins is None
    assert list(dm.sampler("train")) == list(PairSampler(n_a, n_b, True, dm.seed))
    with pytest.raises(ConfigError, match="data.yaw_balanced"):
        FaceDataModule(A=SyntheticIdentity(0), B=SyntheticIdentity(1), mode="many", yaw_balanced=True)


def test_yaw_of_real_faces_is_estimated_from_their_landmarks(tmp_path):
    """A prepared folder (no pose in it) of renders whose yaw is known: the estimate from the index's landmarks,
    and from the landmarks of the loaded faces, is within a few degrees of the truth."""
    make_prepared(tmp_path / "anna", frames=30, size=96)
    src = PreparedIdentity(tmp_path / "anna")
    ids = src.sample_ids()
    truth = np.array([SyntheticFaces(seed=5).sample_pose(0, f)[0] for f in range(30)])
    from_index, from_faces = src.yaws(ids), FaceSource.yaws(src, ids)
    assert np.abs(from_index - truth).mean() < 3 and np.abs(from_faces - truth).mean() < 3
    assert np.ptp(truth) > 40  # the poses span a range the bins then split


def test_yaw_bins_span_the_range_and_place_unknown_yaws_in_the_middle():
    assert yaw_bins([-30, -10, 0, 10, 30], 4).tolist() == [0, 1, 2, 2, 3]
    assert yaw_bins([-30, np.nan, 30], 3).tolist() == [0, 1, 2]
    assert yaw_bins([5, 5], 8).tolist() == [0, 0]
