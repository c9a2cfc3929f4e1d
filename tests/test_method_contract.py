"""The method contract, run for every ``conf/method/*.yaml``: a method added with one file in ``methods/`` and one
yaml is covered here with nothing else edited.

Each method builds from its config on the default data and records its constructor arguments; trains a few steps
with its ``tiny`` settings and lowers its ``fit_loss``, logging its losses under ``train/`` where the NaN guard looks;
is written by ``train`` and reloaded by ``faceswaplab.load`` to the same swaps; swaps tensors, numpy and PIL images
into the same kinds and shapes; resumes exactly after an interruption; runs under ``trainer=ddp_cpu``; and gets a
benchmark row with every pair scored.
"""

import inspect
import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from PIL import Image

import faceswaplab as fsl
from conftest import SMALL, compose_train, method_class, tiny, train_cli, trained_rows
from faceswaplab.config import compose
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.methods.base import FaceSwapMethod
from faceswaplab.methods.build import method_names
from faceswaplab.train import train

METHODS = method_names()
TRAINABLE = [m for m in METHODS if method_class(m).trainable]


class Interrupt(Exception):
    """Raised by :class:`InterruptAt` to cut a run short, as a crash would."""


class InterruptAt(Callback):
    """Stops the run with an exception when epoch `epoch` starts (the checkpoint of the epoch before is written)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise Interrupt


class Recorder(Callback):
    def __init__(self, name: str):
        self.name, self.values, self.logged = name, [], set()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.values.append(float(trainer.callback_metrics[self.name]))
        self.logged |= {k for k in trainer.callback_metrics if k.startswith("train/")}


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """name -> a run directory of that method, trained for one small epoch by ``train`` (made on first use)."""
    made = {}

    def get(name: str) -> Path:
        if name not in made:
            run = tmp_path_factory.mktemp(f"run_{name}")
            train(compose_train(*tiny(name, "trainer.max_epochs=1"), run_dir=run))
            made[name] = run
        return made[name]

    return get


def faces(n: int, identity: int = 0, size: int = 32):
    gen = SyntheticFaces(seed=0)
    return [gen.sample(identity, 100 + k, size=size) for k in range(n)]


def swap(method, target, source=None, **kw):
    """One swap call, seeded (methods may sample in swap, as pix2pix's dropout does)."""
    torch.manual_seed(0)
    if method.identity_specific:
        kw.setdefault("direction", "AtoB")
        kw.pop("source_landmarks", None)
        return method.swap(target, **kw)
    return method.swap(target, source, **kw)


@pytest.mark.parametrize("name", METHODS)
def test_config_builds_the_method_and_records_its_arguments(name):
    cfg = compose_train(f"method={name}", run_dir="/tmp/x")
    method = instantiate(cfg.method)
    assert isinstance(method, FaceSwapMethod)
    assert type(method).__module__ == f"faceswaplab.methods.{name}"  # file name = config name = CLI value
    params = [p for p in inspect.signature(type(method).__init__).parameters.values()
              if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    missing = {p.name for p in params} - set(method.hparams)
    assert not missing, f"{name}: call self.save_hyperparameters() in __init__ (missing {missing})"
    assert method.hparams.get("image_size") in (None, cfg.data.image_size)  # None: any crop size
    if method.trainable:
        assert method.tiny, f"{type(method).__name__}.tiny: give the settings of a model that trains in seconds"
        assert set(method.tiny) <= {p.name for p in params}


def fit_and_check_the_loss_falls(method, data) -> None:
    """30 steps on one fixed batch: `fit_loss` falls, and every ``train/`` value stays finite."""
    assert method.fit_loss.startswith("train/"), "the NaN guard watches values logged under train/"
    rec = Recorder(method.fit_loss)
    trainer = L.Trainer(max_epochs=30, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        limit_train_batches=1, callbacks=[rec])
    trainer.fit(method, data)
    assert len(rec.values) == 30 and all(math.isfinite(v) for v in rec.values)
    first, last = np.mean(rec.values[:5]), np.mean(rec.values[-5:])
    assert last < 0.85 * first, rec.values
    assert any(k.startswith("train/loss") for k in rec.logged), rec.logged


FIXED_BATCH = ("data.A.num_samples=10", "data.batch_size=8", "data.augment=null")


@pytest.mark.parametrize("name", TRAINABLE)
def test_training_lowers_its_loss_and_logs_losses_where_the_nan_guard_sees_them(name):
    L.seed_everything(0)
    cfg = compose_train(*tiny(name, *FIXED_BATCH))
    fit_and_check_the_loss_falls(instantiate(cfg.method), instantiate(cfg.data))


def test_the_method_template_trains_and_swaps():
    from faceswaplab.methods._template import TemplateMethod

    L.seed_everything(0)
    method = TemplateMethod(image_size=32, **TemplateMethod.tiny)
    fit_and_check_the_loss_falls(method, instantiate(compose_train(*SMALL, *FIXED_BATCH).data))
    x = torch.zeros(2, 3, 32, 32)
    assert method.swap(x, direction="BtoA").shape == x.shape and set(TemplateMethod.tiny) <= set(method.hparams)


@pytest.mark.parametrize("name", METHODS)
def test_run_reloads_with_load_and_swaps_every_input_kind(name, runs):
    run = runs(name)
    method = fsl.load(run, device="cpu")
    again = fsl.load(run / "checkpoints" / "last.ckpt", device="cpu")
    assert type(method).__name__ == type(again).__name__ and dict(method.hparams) == dict(again.hparams)
    assert not method.training

    targets, (source,) = faces(2), faces(1, identity=1)
    lms = np.stack([f.landmarks for f in targets])
    kw = dict(target_landmarks=lms, source_landmarks=source.landmarks)
    batch = np.stack([f.image for f in targets])  # (2, 32, 32, 3) uint8
    out = swap(method, batch, source.image, **kw)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert np.array_equal(out, swap(again, batch, source.image, **kw))  # reloaded: the same swaps

    one = swap(method, targets[0].image, source.image, target_landmarks=lms[0], source_landmarks=source.landmarks)
    assert one.shape == (32, 32, 3) and one.dtype == np.uint8
    pil = swap(method, Image.fromarray(targets[0].image), Image.fromarray(source.image), target_landmarks=lms[0],
               source_landmarks=source.landmarks)
    assert isinstance(pil, Image.Image) and pil.size == (32, 32)
    assert np.array_equal(np.asarray(pil), one)
    as_list = swap(method, [t.image for t in targets], source.image, **kw)
    assert isinstance(as_list, list) and len(as_list) == 2 and as_list[0].shape == (32, 32, 3)
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 127.5 - 1
    s = torch.from_numpy(source.image).permute(2, 0, 1).float() / 127.5 - 1
    t_out = swap(method, x, s[None], target_landmarks=torch.from_numpy(lms),
                 source_landmarks=torch.from_numpy(source.landmarks))
    assert t_out.shape == x.shape and t_out.dtype == torch.float32
    assert -1 <= t_out.min() and t_out.max() <= 1
    assert np.abs(((t_out.detach() + 1) * 127.5).round().permute(0, 2, 3, 1).numpy() - out).max() <= 1
    if method.identity_specific:  # both directions are trained, and they differ
        other = method.swap(batch, target_landmarks=lms, direction="BtoA")
        assert other.shape == batch.shape and not np.array_equal(other, out)


@pytest.mark.parametrize("name", TRAINABLE)
def test_interrupted_run_resumes_to_the_same_weights(name, tmp_path):
    args = tiny(name, "trainer.max_epochs=2")
    train(compose_train(*args, run_dir=tmp_path / "straight"))
    cut = tmp_path / "cut"
    with pytest.raises(Interrupt):
        train(compose_train(*args, "+callbacks.interrupt._target_=test_method_contract.InterruptAt",
                            "+callbacks.interrupt.epoch=1", run_dir=cut))
    assert torch.load(cut / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0
    train(compose_train(*args, run_dir=cut))  # the same command again continues from last.ckpt
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(cut / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The training budget counts on across the resume (budget curves read it).
    seen = [[json.loads(ln)["perf/images_seen"] for ln in (d / "metrics.jsonl").read_text().splitlines()]
            for d in (tmp_path / "straight", cut)]
    assert seen[0] == seen[1] and seen[0][-1] > seen[0][0] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_ddp_cpu_two_processes(tmp_path, name):
    proc = train_cli(tmp_path, *tiny(name, "trainer=ddp_cpu", "trainer.max_epochs=1"))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1  # rank 0 alone writes the run files


@pytest.mark.parametrize("name", METHODS)
def test_gets_a_benchmark_row_with_every_pair_scored(name, runs, tmp_path):
    row = f"+methods.{name}_row.run={runs(name)}" if method_class(name).trainable else \
        f"+methods.{name}_row.method={name}"
    n = 4
    out = fsl.run_benchmark(compose("benchmark", [
        "data.A.num_samples=40", "~methods.landmark_warp", *trained_rows(), f"num_pairs={n}", "gallery.per_identity=4",
        "bootstrap.resamples=50",
        f"out_dir={tmp_path}", row]))
    result = out["results"][-1]
    assert result["method"] == f"{name}_row" and result["speed"]["latency_ms"] > 0
    for metric, v in result["metrics"].items():
        assert v["n"] + v["failed"] == n, (metric, v)
    assert f"| {name}_row |" in (tmp_path / "results.md").read_text()
