"""Sharded prepared sets (``prepare ... format=shards``, litdata chunks): the same faces and splits as the folder
format, and training on the shared videos' frames that resumes exactly, with loader workers reading the chunks, on
one process and on two nodes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SMALL, compose_train, method_class
from faceswaplab.data.datasets import PreparedIdentity, ShardedIdentity
from faceswaplab.data.preparation import prepare
from faceswaplab.train import train
from test_method_contract import TRAINABLE, Interrupt
from test_multinode import run_two_nodes, two_nodes

CLIPS = {"woman": "lp_d3_woman_expressions.mp4", "man": "lp_d18_man_expressions.mp4"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, media) -> Path:
    """20 frames of each of two shared videos, prepared at 64 px with format=shards."""
    root = tmp_path_factory.mktemp("shards")
    for name, clip in CLIPS.items():
        (root / "in" / name).mkdir(parents=True)
        (root / "in" / name / clip).symlink_to(media / "videos" / clip)
    prepare(root / "in", root / "out", layout="identities", size=64, fps=10, max_frames=20, format="shards",
            workers=1, progress=False)
    return root / "out"


def test_shards_hold_the_folder_faces_and_splits(prepared):
    for name in CLIPS:
        folder = PreparedIdentity(prepared, name, split_block_s=0.2)
        shards = ShardedIdentity(prepared / "shards", name, split_block_s=0.2)
        assert shards.sample_ids() == folder.sample_ids() and len(folder.sample_ids()) == 20
        assert shards.split((0.8, 0.1, 0.1), 0) == folder.split((0.8, 0.1, 0.1), 0)
        for sid in folder.sample_ids():
            a, b = folder.load(sid, 64), shards.load(sid, 64)
            assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["landmarks"], b["landmarks"])
    before = (prepared / "shards" / "index.json").stat().st_mtime_ns
    prepare(prepared.parent / "in", prepared, layout="identities", size=64, fps=10, max_frames=20, format="shards",
            workers=1, progress=False)  # finished: neither the crops nor the shards are written again
    assert (prepared / "shards" / "index.json").stat().st_mtime_ns == before


def overrides(method: str, data: str, path: Path) -> list[str]:
    """A small run of `method` (its tiny settings) on the two clips, two loader workers, two epochs; methods whose
    preset trains on many identities (mode=many) get every identity of the set."""
    small = [o for o in SMALL if not o.startswith(("data.A.", "data.num_workers", "data.persistent_workers"))]
    args = [f"method={method}", *(f"method.{k}={v}" for k, v in method_class(method).tiny.items()), *small,
            f"data={data}", f"data.A.path={path}", "data.A.identity=woman", "data.B.identity=man",
            "data.A.split_block_s=0.2", "data.A.split_gap_s=0", "data.num_workers=2", "data.persistent_workers=false",
            "trainer.max_epochs=2"]
    if data == "shards" and compose_train(*args).data.mode == "many":  # its preset is for the synthetic faces
        args = [a for a in args if not a.startswith(("data=", "data.A.", "data.B."))]
        args += ["~experiment", "data=shards_identities", f"data.identities.path={path}",
                 "data.identities.min_samples=1", "data.identities.split_block_s=0.2", "data.identities.split_gap_s=0"]
    return args


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


def train_and_resume(tmp_path: Path, args: list[str]) -> dict:
    """Trains straight through and with an interruption after epoch 0; asserts both end with the same weights."""
    train(compose_train(*args, run_dir=tmp_path / "straight"))
    cut = tmp_path / "cut"
    with pytest.raises(Interrupt):
        train(compose_train(*args, "+callbacks.interrupt._target_=test_method_contract.InterruptAt",
                            "+callbacks.interrupt.epoch=1", run_dir=cut))
    train(compose_train(*args, run_dir=cut))
    a, b = weights(tmp_path / "straight"), weights(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return a


def test_training_on_shards_resumes_exactly_and_equals_the_folder(tmp_path, prepared):
    sharded = train_and_resume(tmp_path, overrides("deepfakes", "shards", prepared / "shards"))
    folder_args = overrides("deepfakes", "prepared", prepared)
    train(compose_train(*folder_args, "data.B.path=${data.A.path}", run_dir=tmp_path / "folder"))
    folder = weights(tmp_path / "folder")
    assert all(torch.equal(sharded[k], folder[k]) for k in folder)  # the same batches, whatever the format


@pytest.mark.slow
@pytest.mark.parametrize("name", [m for m in TRAINABLE if m != "deepfakes"])
def test_every_method_trains_on_shards_and_resumes_exactly(tmp_path, prepared, name):
    train_and_resume(tmp_path, overrides(name, "shards", prepared / "shards"))


@pytest.mark.slow
def test_two_nodes_on_shards_resume_exactly(tmp_path, prepared):
    args = [*overrides("deepfakes", "shards", prepared / "shards"), "data.num_workers=1"]
    straight = run_two_nodes(tmp_path / "straight", "deepfakes", "plain", *args)
    cut = tmp_path / "cut"
    stop = ["+callbacks.interrupt._target_=test_method_contract.InterruptAt", "+callbacks.interrupt.epoch=1"]
    assert all(code != 0 and "Interrupt" in out for code, out in two_nodes(cut / "run", [*args, *stop], "plain"))
    resumed = run_two_nodes(cut, "deepfakes", "plain", *args)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
