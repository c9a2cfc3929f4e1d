"""DeepFaceLab's pretrain-then-train recipe: a pretraining run on a population (data=pretrain), then a pair run
from its weights (init_from)."""

import pytest
import torch
from conftest import compose_train

from faceswaplab.data import Pool, SyntheticIdentities, SyntheticIdentity
from faceswaplab.methods.base import load_method
from faceswaplab.resume import ResumeError, initialise_from
from faceswaplab.train import train

PRETRAIN = ["experiment=deepfakes_pretrain", "debug=smoke", "data.A.identities.num_identities=6",
            "data.A.identities.num_samples=10", "trainer.limit_train_batches=8"]
PAIR = ["method=deepfakes", "debug=smoke", "data.A.num_samples=40"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    run = tmp_path_factory.mktemp("pretrain")
    train(compose_train(*PRETRAIN, run_dir=run))
    return run


def _ckpt(run):
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)


def test_a_pool_serves_every_identity_of_a_population_with_their_own_splits():
    population = SyntheticIdentities(num_identities=3, num_samples=10, seed=2)
    pool = Pool(population, name="pretrain-A")
    assert len(pool.sample_ids()) == 30
    splits = pool.split((0.8, 0.1, 0.1), 0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [24, 3, 3]
    assert {sid.split("/")[0] for sid in splits["val"]} == {"synthetic2-0", "synthetic2-1", "synthetic2-2"}
    same = SyntheticIdentity(1, num_samples=10, seed=2)
    assert (pool.load("synthetic2-1/8", 32)["image"] == same.load(8, 32)["image"]).all()
    assert pool.yaws(["synthetic2-1/8"])[0] == same.yaws([8])[0]


def test_pretraining_data_holds_none_of_the_pair_data_identities():
    from faceswaplab.config import compose

    pre, pair = compose("train", PRETRAIN).data, compose("train", PAIR).data
    assert pre.A.identities.seed not in (pair.A.seed, 7, 1000)  # the benchmark's pair, distractors, embedder


def test_init_from_starts_a_fresh_run_from_the_pretrained_weights(pretrained, tmp_path):
    pre = load_method(pretrained)
    scratch = type(pre)(**pre.hparams)
    assert initialise_from(scratch, pretrained) == str(pretrained / "checkpoints" / "last.ckpt")
    for k, v in pre.state_dict().items():
        assert torch.equal(scratch.state_dict()[k], v), k
    assert pre.iterations == 8 and scratch.iterations == 0

    train(compose_train(*PAIR, f"init_from={pretrained}", run_dir=tmp_path))
    tuned, before = _ckpt(tmp_path), _ckpt(pretrained)
    assert before["global_step"] == 8 and tuned["global_step"] == 3  # step 0 at the start, not 8
    assert tuned["deepfakes_iterations"] == 3  # the warp / lr-dropout / GAN schedule from its start
    adam = tuned["optimizer_states"][0]["state"]
    assert {int(s["step"]) for s in adam.values()} == {3}  # a fresh optimiser
    assert any(not torch.equal(v, before["state_dict"][k]) for k, v in tuned["state_dict"].items())  # trained on


def test_init_from_another_architecture_is_refused_in_one_line_naming_the_file(pretrained, tmp_path):
    ckpt = pretrained / "checkpoints" / "last.ckpt"
    with pytest.raises(ResumeError) as e:
        train(compose_train(*PAIR, "method.arch=liae", f"init_from={pretrained}", run_dir=tmp_path / "liae"))
    assert "\n" not in str(e.value) and str(ckpt) in str(e.value) and "liae." in str(e.value)
    with pytest.raises(ResumeError, match="holds faceswaplab.methods.deepfakes.DeepFakes, the config builds"):
        train(compose_train("method=cyclegan", "debug=smoke", f"init_from={ckpt}", run_dir=tmp_path / "cg"))
    with pytest.raises(ResumeError, match="init_from=.*nowhere: no checkpoint"):
        train(compose_train(*PAIR, f"init_from={tmp_path / 'nowhere'}", run_dir=tmp_path / "none"))
    assert not (tmp_path / "liae" / "config.yaml").exists()  # refused before anything was written


@pytest.mark.slow
def test_a_rerun_resumes_its_own_checkpoint_exactly_not_the_pretrained_one(pretrained, tmp_path):
    start = f"init_from={pretrained}"
    train(compose_train(*PAIR, start, "trainer.max_epochs=2", run_dir=tmp_path / "straight"))
    train(compose_train(*PAIR, start, run_dir=tmp_path / "stopped"))
    train(compose_train(*PAIR, start, "trainer.max_epochs=2", run_dir=tmp_path / "stopped"))
    a, b = _ckpt(tmp_path / "straight"), _ckpt(tmp_path / "stopped")
    assert a["global_step"] == b["global_step"] == 6
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
