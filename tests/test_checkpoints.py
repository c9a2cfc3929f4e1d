"""Checkpoints that cannot run code, cannot be silently corrupt, and run records that never lie.

A crafted checkpoint goes through every entry point that loads one; damaged files, mismatched resumes, stale
temporary files and bad config types are refused with one line before anything is written.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image

import faceswaplab
from conftest import compose_train, trained_rows
from faceswaplab.config import compose
from faceswaplab.methods import load_method
from faceswaplab.train import train
from test_training import tiny

TINY_DEEPFAKES = tiny("deepfakes", "trainer.max_epochs=1", "~logger", "callbacks.preview.pairs=0")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny DeepFakes run (32 px, one epoch of three batches)."""
    run = tmp_path_factory.mktemp("trained")
    train(compose_train(*TINY_DEEPFAKES, run_dir=run))
    return run


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run that a test may change."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _ckpt(run: Path) -> Path:
    return run / "checkpoints" / "last.ckpt"


def _record_hash(path: Path) -> None:
    """Write the SHA-256 beside a checkpoint as the saver does, so a crafted file passes the integrity check and
    only the loader stands in the way."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


class Payload:
    """Unpickling this object writes a file (what a malicious checkpoint would do with any code)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _plant_payload(run: Path, marker: Path) -> None:
    ckpt = torch.load(_ckpt(run), weights_only=True)
    ckpt["hyper_parameters"]["note"] = Payload(marker)
    torch.save(ckpt, _ckpt(run))
    _record_hash(_ckpt(run))


def _one_line(error: BaseException, path: Path) -> str:
    message = str(error)
    assert "\n" not in message and str(path) in message, message
    return message


def _load_through(entry: str, run: Path, tmp_path: Path):
    if entry == "load":
        return faceswaplab.load(run, device="cpu")
    if entry == "load_method":
        return load_method(_ckpt(run))
    if entry == "swap_media":
        from faceswaplab.data.synthetic import SyntheticFaces

        photo = tmp_path / "face.png"
        Image.fromarray(SyntheticFaces(seed=0).sample(0, 0, size=64).image).save(photo)
        return faceswaplab.swap_media(photo, tmp_path / "out.png", checkpoint=run, device="cpu", progress=False)
    if entry == "benchmark":
        return faceswaplab.run_benchmark(compose("benchmark", [
            "data.A.num_samples=40", *trained_rows(), "~methods.landmark_warp", "num_pairs=2",
            "gallery.per_identity=2", "bootstrap.resamples=50",
            f"out_dir={tmp_path / 'bench'}", f"+methods.crafted.run={run}"]))
    if entry == "resume":
        return train(compose_train(*TINY_DEEPFAKES, "trainer.max_epochs=2", run_dir=run))
    raise AssertionError(entry)


@pytest.mark.parametrize("entry", ["load", "load_method", "swap_media", "benchmark", "resume"])
def test_a_crafted_checkpoint_runs_no_code_through_any_entry_point(run, tmp_path, entry):
    marker = tmp_path / "pwned.txt"
    _plant_payload(run, marker)
    config = (run / "config.yaml").read_bytes()
    with pytest.raises(Exception) as e:
        _load_through(entry, run, tmp_path)
    assert not marker.exists(), "unpickling the checkpoint ran code"
    assert "refers to exec, which a checkpoint may not hold" in _one_line(e.value, _ckpt(run))
    assert (run / "config.yaml").read_bytes() == config and not list(run.glob("config.*.yaml"))


def test_the_recorded_class_is_looked_up_only_among_our_methods(run, tmp_path, monkeypatch):
    from faceswaplab.methods.deepfakes import DeepFakes

    # A module that writes a file when imported, on the path: naming it in the checkpoint must not import it.
    marker = tmp_path / "imported.txt"
    (tmp_path / "rogue_module.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\nclass Rogue: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = torch.load(_ckpt(run), weights_only=True)
    for name in ("rogue_module.Rogue", "faceswaplab.swap.SwapOptions", "faceswaplab.methods.base.FaceSwapMethod"):
        ckpt["faceswaplab_method"] = name
        torch.save(ckpt, _ckpt(run))
        _record_hash(_ckpt(run))
        with pytest.raises(Exception) as e:
            faceswaplab.load(run, device="cpu")
        assert not marker.exists(), "the recorded module was imported"
        assert f"records the method class '{name}', which is not a method of" in _one_line(e.value, _ckpt(run))

    # A method of one's own loads once allowed.
    from faceswaplab.checkpoints import allow_method

    monkeypatch.setattr("faceswaplab.checkpoints._ALLOWED_METHODS", {})

    class MyDeepFakes(DeepFakes):
        pass

    ckpt["faceswaplab_method"] = f"{MyDeepFakes.__module__}.{MyDeepFakes.__qualname__}"
    torch.save(ckpt, _ckpt(run))
    _record_hash(_ckpt(run))
    with pytest.raises(ValueError, match="allow_method"):
        load_method(_ckpt(run))
    allow_method(MyDeepFakes)
    assert type(load_method(_ckpt(run))) is MyDeepFakes


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "random bytes in the middle":
        middle = len(data) // 2
        data[middle:middle + 4096] = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                                   dtype=torch.uint8).numpy().tobytes()
    elif how == "empty":
        data = bytearray()
    elif how == "text":
        data = bytearray(b"epoch: 3\nthis is not a checkpoint\n")
    elif how == "truncated":
        data = data[: len(data) * 2 // 3]
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how,reason", [
    ("random bytes in the middle", r"damaged or changed since it was written \(its SHA-256"),
    ("empty", r"empty file \(0 bytes\)"),
    ("text", r"not a checkpoint \(a text file"),
    ("truncated", r"truncated \(\d+ bytes, the end of its zip archive is missing\)"),
])
def test_damaged_checkpoints_are_refused_with_one_line(run, how, reason):
    _damage(_ckpt(run), how)
    with pytest.raises(ValueError, match=reason) as e:
        faceswaplab.load(run, device="cpu")
    _one_line(e.value, _ckpt(run))


def test_a_checkpoint_without_its_hash_is_checked_against_its_zip_checksums(run):
    (_ckpt(run).parent / "last.ckpt.sha256").unlink()
    assert type(faceswaplab.load(run, device="cpu")).__name__ == "DeepFakes"  # an older run still loads
    _damage(_ckpt(run), "random bytes in the middle")
    with pytest.raises(ValueError, match=r"damaged \(the checksum of its record .* does not match\)") as e:
        faceswaplab.load(run, device="cpu")
    _one_line(e.value, _ckpt(run))


RESUME = [*TINY_DEEPFAKES, "trainer.max_epochs=2"]


@pytest.mark.parametrize("overrides,key", [
    (tiny("cyclegan", "trainer.max_epochs=2", "~logger"),
     r"^method: the checkpoint .* holds faceswaplab\.methods\.deepfakes\.DeepFakes, the config builds "
     r"faceswaplab\.methods\.cyclegan\.CycleGAN"),
    ([*RESUME, "data.image_size=64"],
     r"^data\.image_size: the checkpoint .* was trained on 32 px crops, the config asks for 64"),
    ([*RESUME, "method.enc_width=16"], r"^architecture: .* changed settings: method\.enc_width=16 \(checkpoint: 8\)"),
    ([*RESUME, "method.lr=1e12"], r"^optimiser: .* optimiser 0 group 0 lr \(checkpoint: 0\.001, config: "
                                  r"1000000000000\.0\) cannot change \(changed settings: method\.lr=1000000000000\.0"),
], ids=["method", "image_size", "architecture", "lr"])
def test_a_mismatched_resume_is_refused_before_the_run_directory_changes(run, overrides, key):
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=key) as e:
        train(compose_train(*overrides, run_dir=run))
    assert "\n" not in str(e.value)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # config.yaml included


def test_a_resume_keeps_earlier_configs_sweeps_stale_temporaries_and_verifies(run):
    stale = [run / "checkpoints" / ".last.k2j3h4.tmp.ckpt", run / "checkpoints" / ".last.ckpt.x8d7s.tmp.sha256"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    first = (run / "config.yaml").read_text()
    train(compose_train(*TINY_DEEPFAKES, "trainer.max_epochs=2", "method.l1_weight=2.0", run_dir=run))
    assert not any(p.exists() for p in stale)
    assert (run / "config.0.yaml").read_text() == first
    now = (run / "config.yaml").read_text()
    assert "max_epochs: 2" in now and "l1_weight: 2.0" in now and "max_epochs: 1" in first
    assert torch.load(_ckpt(run), weights_only=True)["epoch"] == 1  # it did continue
    digest = hashlib.sha256(_ckpt(run).read_bytes()).hexdigest()
    assert (run / "checkpoints" / "last.ckpt.sha256").read_text() == f"{digest}  last.ckpt\n"
    # The same config again changes nothing in the record; another one is kept as config.1.yaml.
    train(compose_train(*TINY_DEEPFAKES, "trainer.max_epochs=2", "method.l1_weight=2.0", run_dir=run))
    assert sorted(p.name for p in run.glob("config.*.yaml")) == ["config.0.yaml"]


class DamageLastCheckpoint(Callback):
    """Damages ``last.ckpt`` once training has started (after the resume read it), as a failing disk would."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module) -> None:
        _damage(self.path, "random bytes in the middle")


def test_the_nan_guard_names_the_newest_checkpoint_that_verifies(run):
    ckpts = run / "checkpoints"
    shutil.copy(ckpts / "last.ckpt", ckpts / "epoch0000.ckpt")  # an older checkpoint, intact
    _record_hash(ckpts / "epoch0000.ckpt")
    cfg = compose_train(*TINY_DEEPFAKES, "trainer.max_epochs=3", "method.l1_weight=nan",
                        f"+callbacks.damage._target_={__name__}.DamageLastCheckpoint",
                        f"+callbacks.damage.path={ckpts / 'last.ckpt'}", run_dir=run)
    with pytest.raises(RuntimeError, match=r"became nan .* the last good checkpoint is \S*epoch0000\.ckpt "
                                           r"\(verified\); \S*last\.ckpt: damaged or changed") as e:
        train(cfg)
    assert "\n" not in str(e.value)


def test_bad_config_values_are_one_line_errors_naming_the_key(tmp_path):
    for method in ("landmark_warp", "deepfakes"):
        cfg = compose_train(*tiny(method, "trainer.max_epochs=abc", "~logger"), run_dir=tmp_path / method)
        with pytest.raises(ValueError, match=r"^trainer\.max_epochs: expected an integer or null, got 'abc'$"):
            train(cfg)
        assert not (tmp_path / method / "config.yaml").exists()
    cfg = compose_train(*tiny("deepfakes", "trainer.limit_val_batches=true", "~logger"), run_dir=tmp_path / "b")
    with pytest.raises(ValueError, match=r"^trainer\.limit_val_batches: expected an integer or a number or null"):
        train(cfg)
    cfg = compose("train", ["data=folders", "data.B.path=/nowhere"], output_dir=tmp_path / "f")
    with pytest.raises(ValueError, match=r"^data\.A\.path: no value given"):
        train(cfg)
    with pytest.raises(ValueError, match=r"^ckpt_path=\S+: no checkpoint at \S+last\.ckpt$"):
        train(compose_train(*tiny("landmark_warp"), f"ckpt_path={tmp_path}", run_dir=tmp_path / "c"))


@pytest.mark.slow  # fresh interpreters importing torch and Lightning
def test_the_command_line_prints_one_line_and_a_traceback_only_when_asked(tmp_path):
    args = [sys.executable, "-m", "faceswaplab.train", "method=landmark_warp", "trainer.max_epochs=abc",
            f"hydra.run.dir={tmp_path}"]
    env = {k: v for k, v in os.environ.items() if k not in ("FACESWAPLAB_DEBUG", "HYDRA_FULL_ERROR")}
    proc = subprocess.run(args, env={**env, "PYTHONWARNINGS": "ignore"}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: trainer.max_epochs: expected an integer or null, got 'abc'"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    debug = subprocess.run(args, env={**env, "PYTHONWARNINGS": "ignore", "FACESWAPLAB_DEBUG": "1"},
                           capture_output=True, text=True, timeout=300)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "check_config" in debug.stderr


def test_run_dir_names_every_file_of_a_run(run):
    from faceswaplab.runs import RunDir

    r = RunDir(run)
    last = run / "checkpoints" / "last.ckpt"
    assert r.last_checkpoint == last and r.checkpoints == [last]
    assert RunDir.checkpoint_of(run) == last and RunDir.checkpoint_of(last) == last
    assert RunDir.of_checkpoint(last).path == run and load_method(run).hparams.image_size == 32
    assert r.image_size == 32 and r.config.method._target_.endswith(".DeepFakes")
    assert set(r.splits["identities"]) == {"synthetic0-0", "synthetic0-1"}
    assert [m["stage"] for m in r.metrics] == ["validate"] and r.metrics_file.name == "metrics.jsonl"
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        RunDir.checkpoint_of(run / "missing")

    for n in (10, 2, 0, 1):
        (run / f"config.{n}.yaml").write_text(f"n: {n}\n")
    assert [p.name for p in r.previous_configs] == ["config.0.yaml", "config.1.yaml", "config.2.yaml",
                                                    "config.10.yaml"]
    r.write_config(r.config)  # the same config: nothing to keep
    assert len(r.previous_configs) == 4
    (run / "config.yaml").unlink()  # a checkpoint outside a run: the crop size is the checkpoint's own
    assert RunDir.of_checkpoint(last) is None and r.image_size == 32
