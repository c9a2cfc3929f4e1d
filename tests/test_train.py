import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from faceswaplab.config import CONFIG_DIR
from faceswaplab.methods import load_method
from faceswaplab.methods.landmark_warp import LandmarkWarp
from faceswaplab.train import train

# A method without parameters makes Lightning warn on reload; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:The state dict in .* contains no parameters")

# Small synthetic data: 32 px crops, 40 renders per identity (4 validation ones), no worker processes.
SMALL = ["data.image_size=32", "data.batch_size=4", "data.num_workers=0", "data.persistent_workers=false",
         "data.A.num_samples=40", "trainer.limit_val_batches=1", "callbacks.preview.pairs=3"]


def _compose(run_dir, *overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=[f"run_dir={run_dir}", "method=landmark_warp", *SMALL, *overrides])


def _check_run_dir(run_dir, blend):
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert cfg.method._target_ == "faceswaplab.methods.landmark_warp.LandmarkWarp"
    assert cfg.method.blend == blend and cfg.run_dir == str(run_dir)
    assert cfg.method.forehead == cfg.data.forehead  # resolved, not an interpolation

    splits = json.loads((run_dir / "splits.json").read_text())
    assert len(splits["identities"]) == 2
    for entry in splits["identities"].values():
        assert len(entry["val"]) == 4 and not set(entry["val"]) & set(entry["train"])

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["stage"] == "validate" and records[0]["step"] == 0
    assert records[0]["val/face_change"] > 0.02 and records[0]["val/background_l1"] < 0.02

    # The method only saw validation pairs: 3 per direction, rows of source | target | swap at 32 px.
    preview = np.asarray(Image.open(run_dir / "preview.png"))
    assert preview.shape == (6 * 34 + 2, 3 * 34 + 2, 3)

    ckpt = run_dir / "checkpoints" / "last.ckpt"
    method = LandmarkWarp.load_from_checkpoint(ckpt)
    assert method.hparams.blend == blend and method.hparams.forehead == cfg.data.forehead
    assert isinstance(load_method(ckpt), LandmarkWarp)


def test_train_landmark_warp_writes_a_complete_run(tmp_path):
    cfg = _compose(tmp_path, "method.blend=feather", "method.color=histogram")
    result = train(cfg)
    assert result["run_dir"] == str(tmp_path) and result["checkpoint"] == str(tmp_path / "checkpoints" / "last.ckpt")
    assert result["preview"] == str(tmp_path / "preview.png") and result["splits"] == str(tmp_path / "splits.json")
    assert set(result["metrics"]) >= {"val/face_change", "val/background_l1"}
    _check_run_dir(tmp_path, "feather")
    assert LandmarkWarp.load_from_checkpoint(result["checkpoint"]).hparams.color == "histogram"
    # The CSV logger got the same numbers.
    assert "val/face_change" in (tmp_path / "csv" / "version_0" / "metrics.csv").read_text()


def test_bad_method_settings_fail_before_anything_runs(tmp_path):
    with pytest.raises(Exception, match="blend must be one of"):
        train(_compose(tmp_path, "method.blend=poisson"))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning: several seconds
def test_cli_runs_as_a_subprocess(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "faceswaplab.train", "method=landmark_warp", f"hydra.run.dir={run_dir}", *SMALL],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_run_dir(run_dir, "seamless")
    assert "val/face_change" in proc.stdout


@pytest.mark.slow
def test_optuna_search_returns_the_best_trials_held_out_metric(tmp_path):
    """``-m hparams_search=deepfakes_optuna``: every trial returns ``optimized_metric``, the sweeper keeps the best."""
    cmd = [sys.executable, "-m", "faceswaplab.train", "-m", "hparams_search=deepfakes_optuna", "debug=smoke",
           "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(trials) == 2 and all("method.lr=" in p.name for p in trials)
    values = [json.loads((p / "metrics.jsonl").read_text().splitlines()[-1])["val/reconstruction_l1"] for p in trials]
    best = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert best.best_value == pytest.approx(min(values))
