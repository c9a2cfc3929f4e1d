"""The benchmark runner on a tiny trained DeepFakes run, the landmark-warp baseline and the reference rows."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from faceswaplab.benchmark import bootstrap_interval, run_benchmark
from faceswaplab.config import CONFIG_DIR
from faceswaplab.train import train
from conftest import compose_train
from test_training import tiny

DATA = ["data.A.num_samples=40"]


def compose_benchmark(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("benchmark", overrides=list(overrides))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("deepfakes_run")
    train(compose_train(*tiny("deepfakes", "trainer.max_epochs=1"), run_dir=run))
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "splits.json").is_file()
    return run


def bench(run, out, *extra):
    # data.image_size is left at the default 64: the run's config.yaml (32 px) must win.
    return run_benchmark(compose_benchmark(
        *DATA, "num_pairs=4", "gallery_per_identity=4", "bootstrap.resamples=200", f"out_dir={out}",
        f"+methods.deepfakes.run={run}", *extra))


def test_benchmark_rows_files_and_determinism(trained_run, tmp_path):
    out = bench(trained_run, tmp_path / "a")
    rows = {r["method"]: r for r in out["results"]}
    assert list(rows) == ["target", "source", "landmark_warp", "deepfakes"]

    # Files: the CSV has one row per method and the interval columns of every available metric.
    with open(tmp_path / "a" / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["method"] for r in table] == list(rows)
    for m in ("identity_similarity", "identity_retrieval", "landmark_nme", "pose_error", "expression_error"):
        assert {f"{m}_mean", f"{m}_lo", f"{m}_hi", f"{m}_failed"} <= set(table[0])
    assert {"latency_ms", "peak_memory_mb"} <= set(table[0])
    md = (tmp_path / "a" / "results.md").read_text()
    assert all(f"| {name} |" in md for name in rows)
    # Offline, the LPIPS and Inception weights are missing: listed with the reason, not a crash.
    for m in ("lpips", "background_lpips", "fid", "kid"):
        assert m in out["unavailable"] and f"`{m}`: {out['unavailable'][m]}" in md
    grid = np.asarray(Image.open(tmp_path / "a" / "samples.png"))
    assert grid.shape[1] > grid.shape[0] > 4 * 32  # 4 rows, 6 columns (source, target, 4 methods) of 32 px

    # Reference rows: the target is the attribute optimum, the source the identity optimum.
    val = {n: {m: v["mean"] for m, v in r["metrics"].items()} for n, r in rows.items()}
    assert val["target"]["landmark_nme"] == 0 and val["target"]["pose_error"] == pytest.approx(0, abs=1e-6)
    for n in ("source", "landmark_warp", "deepfakes"):
        if math.isfinite(val[n]["landmark_nme"]):
            assert val[n]["landmark_nme"] > val["target"]["landmark_nme"]
            assert val[n]["pose_error"] > val["target"]["pose_error"]
        assert val[n]["identity_similarity"] <= val["source"]["identity_similarity"]
    assert val["source"]["identity_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert val["source"]["identity_retrieval"] == 1.0

    # Intervals contain the means; speed is measured for every row.
    for r in rows.values():
        for m, v in r["metrics"].items():
            if v["n"]:
                assert v["lo"] <= v["mean"] <= v["hi"], (r["method"], m, v)
            assert v["n"] + v["failed"] == 4
        assert r["speed"]["latency_ms"] > 0 and r["speed"]["peak_memory_mb"] > 0

    # results.jsonl: provenance, and the same numbers from a second run.
    lines = [json.loads(x) for x in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    assert [x["method"] for x in lines] == list(rows)
    assert lines[0]["embedder"] == "synthetic" and lines[0]["weight_files"]
    assert lines[0]["seeds"]["benchmark"] == 0 and "git_commit" in lines[0]
    assert lines[3]["checkpoint"].endswith("last.ckpt") and lines[0]["config"]["data"]["image_size"] == 64
    assert {p["direction"] for p in lines[0]["pairs"]} == {"AtoB", "BtoA"}
    bench(trained_run, tmp_path / "b")
    again = [json.loads(x) for x in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    assert [x["metrics"] for x in again] == [x["metrics"] for x in lines]
    assert [x["pairs"] for x in again] == [x["pairs"] for x in lines]


def test_benchmark_refuses_runs_of_different_sizes(trained_run, tmp_path):
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "checkpoints" / "last.ckpt").write_bytes((trained_run / "checkpoints" / "last.ckpt").read_bytes())
    (other / "splits.json").write_text((trained_run / "splits.json").read_text())
    (other / "config.yaml").write_text((trained_run / "config.yaml").read_text().replace(
        "image_size: 32", "image_size: 64"))
    with pytest.raises(ValueError, match="different image sizes"):
        bench(trained_run, tmp_path / "out", f"+methods.other.run={other}")
    with pytest.raises(ValueError, match="not a run directory"):
        bench(trained_run, tmp_path / "out", f"+methods.missing.run={tmp_path}")
    with pytest.raises(ValueError, match="must be trained first"):
        bench(trained_run, tmp_path / "out", "+methods.untrained.method=cyclegan")


def test_benchmark_command_line(tmp_path):
    out = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "faceswaplab.benchmark", *DATA, "data.image_size=32", "num_pairs=2",
                    "gallery_per_identity=2", "~methods.landmark_warp", f"hydra.run.dir={out}"],
                   check=True, capture_output=True, text=True, timeout=300)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["target", "source"]
    assert (out / "results.csv").is_file() and (out / "samples.png").is_file()


def test_bootstrap_interval_is_seeded_and_skips_failures():
    v = [0.1, 0.5, np.nan, 0.3, 0.9]
    mean, lo, hi, n = bootstrap_interval(v, 500, 0.95, seed=3)
    assert n == 4 and mean == pytest.approx(0.45) and lo < mean < hi
    assert bootstrap_interval(v, 500, 0.95, seed=3) == (mean, lo, hi, n)
    assert math.isnan(bootstrap_interval([np.nan], 10)[0])
