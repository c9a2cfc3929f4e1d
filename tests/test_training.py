"""The training entry point with learned methods: configs, loggers, exact resume, NaN handling, DDP on CPU."""

import itertools
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from hydra import initialize_config_dir
from omegaconf import OmegaConf

from conftest import compose_train, tiny, train_cli
from faceswaplab.callbacks import NonFiniteLossError
from faceswaplab.config import CONFIG_DIR
from faceswaplab.loggers import read_wandb_run
from faceswaplab.methods.base import FaceSwapMethod
from faceswaplab.train import train

CONF = Path(CONFIG_DIR)
METHODS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONF / "trainer").glob("*.yaml"))
LOGGERS = sorted(p.stem for p in (CONF / "logger").glob("*.yaml"))

def test_every_method_data_trainer_logger_combination_composes():
    assert {"cyclegan", "deepfakes", "landmark_warp", "pix2pix"} <= set(METHODS)
    assert {"cpu", "gpu", "ddp", "ddp_cpu", "multinode"} <= set(TRAINERS)
    assert {"csv", "tensorboard", "wandb"} <= set(LOGGERS)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for combo in itertools.product(METHODS, DATA, TRAINERS, LOGGERS):
            overrides = [f"{group}={name}" for group, name in zip(("method", "data", "trainer", "logger"), combo)]
            cfg = compose_train(*overrides, run_dir="/tmp/x")
            resolved = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
            assert resolved["method"]["_target_"].startswith("faceswaplab.methods."), combo
            assert resolved["trainer"]["_target_"] == "lightning.pytorch.Trainer", combo
            assert next(iter(resolved["logger"].values()))["_target_"], combo
    # Multi-device trainers are what they say.
    assert compose_train("trainer=ddp_cpu").trainer.devices == 2
    assert compose_train("trainer=multinode").trainer.num_nodes == 2


def test_train_writes_run_files_and_logs_to_tensorboard(tmp_path):
    cfg = compose_train(*tiny("deepfakes", "trainer.max_epochs=2", "logger=tensorboard",
                              "callbacks.preview.every_n_batches=2"), run_dir=tmp_path)
    result = train(cfg)
    assert result["checkpoint"] == str(tmp_path / "checkpoints" / "last.ckpt")
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    assert records[-1]["perf/images_per_sec"] > 0 and records[-1]["perf/peak_memory_mb"] > 0
    assert {"train/loss_A", "train/loss_l1_B", "val/face_change"} <= set(records[-1])
    assert (tmp_path / "preview.png").exists() and (tmp_path / "timelapse.png").exists()
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == [
        "swaps_00000002.png", "swaps_00000003.png", "swaps_00000004.png", "swaps_00000006.png"]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_wandb_offline_run_holds_metrics_and_images(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_train(*tiny("cyclegan", "trainer.max_epochs=2", "logger=wandb", "trainer.log_every_n_steps=1",
                              "logger.wandb.tags=[unit]"), run_dir=tmp_path)
    train(cfg)
    import wandb

    assert wandb.run is None  # train() ended its run: a next train() in this process gets its own
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    logged = read_wandb_run(run)
    assert logged["complete"]
    keys = set().union(*logged["history"])
    assert {"train/loss_cycle_A", "train/loss_D_B", "val/face_change", "perf/images_per_sec"} <= keys
    assert logged["config"]["method"]["lambda_A"] == 10.0  # filterable as method.lambda_A
    media = {p.name for p in logged["media"]}
    for name in ("preview", "timelapse"):  # both images, once per preview (after each validation pass)
        rows = [r for r in logged["history"] if r.get(f"{name}/_type") == "images/separated"]
        assert len(rows) == 2, name
        assert all(Path(r[f"{name}/filenames"][0]).name in media for r in rows), name
    heights = [r["timelapse/height"] for r in logged["history"] if "timelapse/height" in r]
    assert heights[1] > heights[0]  # the timelapse gained a row of swaps
    # Images and metrics share one x axis: the last preview sits at the last training batch's step.
    steps = {kind: [r["trainer/global_step"] for r in logged["history"] if key in r]
             for kind, key in (("perf", "perf/images_per_sec"), ("image", "preview/_type"))}
    assert steps["image"][-1] == max(steps["perf"]), steps


def test_top_level_load_returns_a_ready_method(tmp_path):
    import faceswaplab as fsl

    train(compose_train(*tiny("deepfakes", "trainer.max_epochs=1"), run_dir=tmp_path))
    method = fsl.load(tmp_path, device="cpu")
    assert isinstance(method, fsl.FaceSwapMethod) and not method.training
    out = method.swap(torch.zeros(2, 3, 32, 32), direction="BtoA")
    assert out.shape == (2, 3, 32, 32)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fsl.load(tmp_path / "missing")
    assert fsl.SyntheticFaces is __import__("faceswaplab.data.synthetic").data.synthetic.SyntheticFaces


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    train(compose_train(*tiny("deepfakes", "trainer.max_epochs=1"), run_dir=tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    cfg = compose_train(*tiny("deepfakes", "trainer.max_epochs=3", "method.l1_weight=nan"), run_dir=tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"train/loss.* became nan .* last good checkpoint is .*last.ckpt"):
        train(cfg)
    assert last.read_bytes() == before


def _weights(run_dir):
    return torch.load(Path(run_dir) / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["deepfakes", "cyclegan"])
def test_sigkill_and_resume_ends_with_the_same_weights(tmp_path, method):
    args = tiny(method, "trainer.max_epochs=5", "trainer.limit_train_batches=4")
    straight = train_cli(tmp_path / "straight", *args)
    out, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, out

    run = tmp_path / "killed"
    proc = train_cli(run, *args)
    ckpt = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert torch.load(ckpt, weights_only=False)["epoch"] < 4  # intact, and written before the end

    resumed = train_cli(run, *args)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    a, b = _weights(tmp_path / "straight"), _weights(run)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2, 3, 4]


def test_cpu_threads_leave_cores_for_loader_workers_and_processes(tmp_path):
    from faceswaplab.train import cpu_threads

    cores = len(os.sched_getaffinity(0))
    assert cpu_threads("auto", workers=0) == cores
    assert cpu_threads("auto", workers=1) == max(1, cores - 1)
    assert cpu_threads("auto", workers=0, processes=2) == max(1, cores // 2)
    assert cpu_threads("auto", workers=cores + 4) == 1  # never below one
    assert cpu_threads(3, workers=1) == 3 and cpu_threads(None, workers=1) is None
    # train() restores the caller's setting afterwards (a library call leaves the process as it found it).
    before = torch.get_num_threads()
    cfg = compose_train(*tiny("landmark_warp"), "threads=3", "~logger", run_dir=tmp_path)
    train(cfg)
    assert torch.get_num_threads() == before


class _Terms(FaceSwapMethod):
    """Two logged terms that change every step; `b` is NaN at step `nan_at`."""

    fit_loss = "train/a"

    def __init__(self, nan_at: int = -1):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.nan_at = nan_at

    def training_step(self, batch, batch_idx):
        b = torch.tensor(float("nan")) if self.global_step == self.nan_at else 2 * self.w
        self.log_losses({"a": self.w * 1, "b": b}, 3 * self.w, 1)
        return self.w * batch.sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_loss_terms_are_logged_on_logging_steps_and_a_nan_term_on_any_step(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from faceswaplab.callbacks import FiniteLoss

    class Seen(Callback):
        def __init__(self):
            self.b, self.total = [], []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            b = trainer.callback_metrics.get("train/b")
            self.b.append(None if b is None else float(b))
            self.total.append(float(trainer.callback_metrics["train/loss"]))

    def fit(method, *callbacks):
        L.Trainer(max_epochs=1, limit_train_batches=7, log_every_n_steps=3, logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks)).fit(
            method, torch.utils.data.DataLoader(torch.ones(10, 1), batch_size=1))

    seen = Seen()
    fit(_Terms(), seen)
    new_b = [k for k in range(7) if seen.b[k] != (seen.b[k - 1] if k else None)]
    assert new_b == [2, 5, 6]  # every 3rd step and the epoch's last
    assert len(set(seen.total)) == 7  # train/loss every step
    with pytest.raises(NonFiniteLossError, match=r"train/b became nan at epoch 0, batch 1 "):
        fit(_Terms(nan_at=1), FiniteLoss(tmp_path))
