"""The benchmark runner on a tiny trained DeepFakes run, the landmark-warp baseline and the reference rows."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from faceswaplab.benchmarking import bootstrap_interval, run_benchmark
from faceswaplab.config import compose
from faceswaplab.train import train
from conftest import compose_train, tiny, trained_rows

DATA = ["data.A.num_samples=40"]
TRAINED_ROWS = trained_rows()  # the defaults train for minutes


def compose_benchmark(*overrides):
    return compose("benchmark", overrides)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("deepfakes_run")
    train(compose_train(*tiny("deepfakes", "trainer.max_epochs=1"), run_dir=run))
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "splits.json").is_file()
    return run


def bench(run, out, *extra):
    # data.image_size is left at the default 64: the run's config.yaml (32 px) must win.
    return run_benchmark(compose_benchmark(
        *DATA, *TRAINED_ROWS, "num_pairs=4", "gallery.per_identity=4", "bootstrap.resamples=200", f"out_dir={out}",
        f"+methods.trained.run={run}", *extra))


def test_benchmark_rows_files_and_determinism(trained_run, tmp_path):
    out = bench(trained_run, tmp_path / "a")
    rows = {r["method"]: r for r in out["results"]}
    assert list(rows) == ["target", "source", "source_other", "landmark_warp", "trained"]

    # Files: the CSV has one row per method and the interval columns of every available metric.
    with open(tmp_path / "a" / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["method"] for r in table] == list(rows)
    for m in ("identity_similarity", "identity_retrieval", "identity_retrieval_top5", "identity_match",
              "face_detected", "landmark_nme", "pose_error", "expression_error", "pose_error_source"):
        assert {f"{m}_mean", f"{m}_lo", f"{m}_hi", f"{m}_failed"} <= set(table[0])
    assert {"latency_ms", "peak_memory_mb", "train_images_per_sec"} <= set(table[0])
    md = (tmp_path / "a" / "results.md").read_text()
    assert all(f"| {name} |" in md for name in rows)
    # Offline, the LPIPS and Inception weights are missing: listed with the reason, not a crash; the identity-feature
    # Fréchet distance stands in, under its own name.
    for m in ("lpips", "background_lpips", "fid", "kid"):
        assert m in out["unavailable"] and f"`{m}`: {out['unavailable'][m]}" in md
    assert math.isfinite(rows["trained"]["metrics"]["identity_fd"]["mean"])
    grid = np.asarray(Image.open(tmp_path / "a" / "samples.png"))
    assert grid.shape[1] > grid.shape[0] > 4 * 32  # 4 rows, 7 columns (source, target, 5 rows) of 32 px
    assert grid[:14].max() == 255 and grid[:14].mean() < 60  # the header row: white names on black

    # The references go through the methods' path: the target's landmarks are measured like any output's, so its
    # attribute errors are the measurement's noise floor, above zero; the source photo's own identity is the
    # trivial maximum, another photo of the source the realistic ceiling below it.
    val = {n: {m: v["mean"] for m, v in r["metrics"].items()} for n, r in rows.items()}
    assert val["target"]["landmark_nme"] > 0 and val["target"]["pose_error"] > 0
    for n in ("source", "source_other"):
        assert val[n]["landmark_nme"] > val["target"]["landmark_nme"]
        assert val[n]["identity_similarity"] > val["target"]["identity_similarity"]
    assert val["source_other"]["identity_similarity"] < val["source"]["identity_similarity"]
    assert (tmp_path / "a" / "significance.md").is_file() and out["significance"]
    assert "Normalised between the reference rows" in md and "chance top-1" in md
    # Retrieval is N-way: every identity of the data plus distractors, so chance is far below the 50 % of a two-way
    # choice, and leaving the target unchanged does not find the source.
    cal = out["calibration"]
    assert cal["gallery_identities"] >= 22 and cal["identity_retrieval_chance"] == 1 / cal["gallery_identities"]
    assert val["target"]["identity_retrieval"] <= 0.25 and val["source_other"]["identity_retrieval_top5"] >= 0.75

    # Intervals contain the means; speed is measured for every row.
    for r in rows.values():
        for m, v in r["metrics"].items():
            if math.isfinite(v["lo"]):  # per-sample metrics (set-level ones have no interval)
                assert v["lo"] <= v["mean"] <= v["hi"], (r["method"], m, v)
            assert v["n"] == 4 and v["failed"] == 0, (r["method"], m, v)  # every output scored
        assert r["speed"]["latency_ms"] > 0 and r["speed"]["peak_memory_mb"] > 0
    assert rows["trained"]["speed"]["train_images_per_sec"] > 0  # from the run's metrics.jsonl
    assert math.isnan(rows["landmark_warp"]["speed"]["train_images_per_sec"])

    # Fairness: every pair is in one group of each axis, for every row and per-pair metric.
    totals = {}
    for c in out["fairness"]["cells"]:
        key = (c["axis"], c["row"], c["metric"])
        totals[key] = totals.get(key, 0) + c["pairs"]
    assert set(totals.values()) == {4} and {k[1] for k in totals} == set(rows)
    assert "## skin tone" in (tmp_path / "a" / "fairness.md").read_text()

    # Plots: one bar panel per computed metric, and the identity / attribute scatter.
    for name in ("metrics.png", "identity_vs_attributes.png"):
        img = np.asarray(Image.open(tmp_path / "a" / name))
        assert img.ndim == 3 and img.shape[0] > 200 and img.std() > 10, name

    # results.jsonl: provenance, and the same numbers from a second run.
    lines = [json.loads(x) for x in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    assert [x["method"] for x in lines] == list(rows)
    assert lines[0]["embedder"] == "synthetic" and lines[0]["weight_files"]
    assert lines[0]["seeds"]["benchmark"] == 0 and "git_commit" in lines[0]
    assert lines[4]["checkpoint"].endswith("last.ckpt") and lines[0]["config"]["data"]["image_size"] == 64
    assert {p["direction"] for p in lines[0]["pairs"]} == {"AtoB", "BtoA"}
    bench(trained_run, tmp_path / "b")
    again = [json.loads(x) for x in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    assert [x["metrics"] for x in again] == [x["metrics"] for x in lines]
    assert [x["pairs"] for x in again] == [x["pairs"] for x in lines]

    # pairs.json names the samples; given back as pairs_file (with another seed) it fixes the same pairs.
    pairs = json.loads((tmp_path / "a" / "pairs.json").read_text())
    assert pairs["pairs"][0]["source"][0] == "synthetic0-0" and pairs["pairs"][0]["target"][0] == "synthetic0-1"
    bench(trained_run, tmp_path / "c", f"pairs_file={tmp_path / 'a' / 'pairs.json'}", "seed=5")
    assert json.loads((tmp_path / "c" / "pairs.json").read_text()) == pairs


def test_benchmark_trains_rows_once_and_refuses_other_settings(tmp_path):
    train = tiny("deepfakes", "trainer.max_epochs=1")
    rows = f"+methods.df.train=[{','.join(repr(o) for o in train)}]"
    common = [*DATA, *TRAINED_ROWS, "~methods.landmark_warp", "data.image_size=32", "num_pairs=2",
              "gallery.per_identity=2", "bootstrap.resamples=50", f"train_dir={tmp_path / 'models'}"]
    out = run_benchmark(compose_benchmark(*common, rows, f"out_dir={tmp_path / 'a'}"))
    run = tmp_path / "models" / "df"
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and (run / "benchmark_train.json").is_file()
    df = out["results"][-1]
    assert df["method"] == "df" and df["kind"] == "train" and df["speed"]["train_images_per_sec"] > 0
    # The benchmark's data wins over the training overrides, except for loader settings.
    trained = json.loads((run / "benchmark_train.json").read_text())["config"]["data"]
    assert trained["image_size"] == 32 and trained["num_workers"] == 0 and trained["batch_size"] == 4

    stamp = ckpt.stat().st_mtime_ns
    again = run_benchmark(compose_benchmark(*common, rows, f"out_dir={tmp_path / 'b'}"))
    assert ckpt.stat().st_mtime_ns == stamp  # reused, not retrained
    assert again["results"][-1]["metrics"] == df["metrics"]

    other = rows.replace("max_epochs=1", "max_epochs=2")
    with pytest.raises(ValueError, match="other settings"):
        run_benchmark(compose_benchmark(*common, other, f"out_dir={tmp_path / 'c'}"))


def test_benchmark_logs_table_and_images_to_wandb_offline(tmp_path, monkeypatch):
    from faceswaplab.loggers import read_wandb_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = run_benchmark(compose_benchmark(
        *DATA, *TRAINED_ROWS, "data.image_size=32", "num_pairs=2", "gallery.per_identity=2",
        "bootstrap.resamples=50", f"out_dir={tmp_path}", "wandb.enabled=true", "wandb.group=bench-test"))
    run = read_wandb_run(out["files"]["wandb"])
    assert run["complete"]  # its closing record was written
    logged = {k.rsplit("/", 1)[0] for row in run["history"] for k in row}  # media are logged as nested keys
    assert {"benchmark/results", "benchmark/samples", "benchmark/metrics"} <= logged
    assert run["summary"]["landmark_warp/landmark_nme"] == pytest.approx(
        out["results"][3]["metrics"]["landmark_nme"]["mean"])
    assert sum(p.suffix == ".png" for p in run["media"]) == 3  # samples, metrics, identity_vs_attributes
    table = json.loads(next(p for p in run["media"] if p.name.endswith(".table.json")).read_text())
    assert [row[0] for row in table["data"]] == ["target", "source", "source_other", "landmark_warp"]
    assert "identity_similarity_lo" in table["columns"]


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
                    "gallery.per_identity=2", "~methods.landmark_warp", *TRAINED_ROWS, f"hydra.run.dir={out}"],
                   check=True, capture_output=True, text=True, timeout=300)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["target", "source", "source_other"]
    assert (out / "results.csv").is_file() and (out / "samples.png").is_file()


def test_bootstrap_interval_is_seeded_and_skips_failures():
    v = [0.1, 0.5, np.nan, 0.3, 0.9]
    mean, lo, hi, n = bootstrap_interval(v, 500, 0.95, seed=3)
    assert n == 4 and mean == pytest.approx(0.45) and lo < mean < hi
    assert bootstrap_interval(v, 500, 0.95, seed=3) == (mean, lo, hi, n)
    assert math.isnan(bootstrap_interval([np.nan], 10)[0])


@pytest.mark.parametrize("name,extra", [
    ("synthetic", []), ("real_faces", []),
    ("celebahq", ["celebahq.root=/data/celebahq", "celebahq.A=10", "celebahq.B=20"]),
    ("ffpp", ["ffpp.root=/data/ffpp", "ffpp.a=953", "ffpp.b=974"]),
])
def test_published_benchmark_configs_compose(name, extra):
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "faceswaplab.benchmark", "--config-dir", "benchmarks/configs",
                          "--config-name", name, *extra, "--cfg", "job", "--resolve"],
                         cwd=root, check=True, capture_output=True, text=True, timeout=120).stdout
    cfg = yaml.safe_load(out)
    assert cfg["data"]["mode"] == "pair" and set(cfg["methods"]) >= {"target", "source", "source_other",
                                                                       "landmark_warp", "cyclegan", "pix2pix",
                                                                       "deepfakes"}
    if cfg["pairs_file"]:  # the pair lists shipped beside the configs
        pairs = json.loads((root / cfg["pairs_file"]).read_text())
        assert pairs["format"] == "faceswaplab-pairs-1" and len(pairs["pairs"]) == cfg["num_pairs"]
    if name in ("celebahq", "ffpp"):
        assert cfg["data"]["image_size"] == 256 and cfg["methods"]["deepfakes"]["train"] == ["experiment=deepfakes_256"]
        assert "/data/" in cfg["data"]["A"]["path"]


def test_budget_curves_score_each_periodic_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(compose_train(*tiny("deepfakes", "trainer.max_epochs=5", "callbacks.periodic_checkpoint.every_n_epochs=2"),
                        run_dir=run))
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch*.ckpt")) == ["epoch0001.ckpt", "epoch0003.ckpt"]
    out = bench(run, tmp_path / "out", "~methods.landmark_warp", "budget.enabled=true")
    with open(tmp_path / "out" / "budget.csv") as f:
        table = list(csv.DictReader(f))
    assert {r["method"] for r in table} == {"trained"}  # references and untrained rows have no training
    points = {}
    for r in table:
        points.setdefault(int(r["epoch"]), {})[r["metric"]] = float(r["mean"])
        points[int(r["epoch"])]["images_seen"] = float(r["images_seen"])
        points[int(r["epoch"])]["wall_s"] = float(r["wall_s"])
    # Two periodic checkpoints (after epochs 2 and 4), then the final one (after epoch 5).
    assert sorted(points) == [1, 3, 4]
    # 3 batches of 4 faces of each of the two identities per epoch.
    assert [points[e]["images_seen"] for e in (1, 3, 4)] == [48, 96, 120]
    assert 0 < points[1]["wall_s"] < points[3]["wall_s"] < points[4]["wall_s"]
    final = {r["method"]: r for r in out["results"]}["trained"]["metrics"]
    assert all(points[4][m] == v["mean"] or math.isnan(v["mean"]) for m, v in final.items())
    assert points[1]["identity_similarity"] != points[4]["identity_similarity"]  # other weights, other outputs
    md = (tmp_path / "out" / "budget.md").read_text()
    assert "## trained" in md and "| source_other |" in md
    assert Image.open(tmp_path / "out" / "budget.png").size[0] > 100


def test_gallery_takes_single_image_identities(tmp_path):
    from faceswaplab.data.synthetic import SyntheticFaces
    from faceswaplab.io import write_image

    # A "group photo" of three faces (renders of a population the data does not use), prepared: one entry each.
    faces = SyntheticFaces(seed=3, num_identities=3)
    rows = []
    for k in range(3):
        s = faces.sample(k, 0, size=64)
        write_image(tmp_path / "group" / "faces" / f"group_{k}.png", s.image)
        rows.append({"crop": f"faces/group_{k}.png", "source": "/photos/group.jpg", "identity": "group", "frame": None,
                     "face": k, "landmarks_crop": s.landmarks.tolist(), "size": 64})
    (tmp_path / "group" / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    group = ("gallery.distractors=[{_target_:faceswaplab.data.FacesAsIdentities,exclude:[group_2],"
             f"source:{{_target_:faceswaplab.data.PreparedIdentity,path:'{tmp_path / 'group'}'}}}}]")
    out = run_benchmark(compose_benchmark(*DATA, *TRAINED_ROWS, "~methods.landmark_warp", "num_pairs=4",
                                          "gallery.per_identity=4", "bootstrap.resamples=50", f"out_dir={tmp_path / 'b'}",
                                          "metrics=[identity_retrieval,identity_retrieval_top5]", group))
    cal = out["calibration"]
    assert cal["gallery_identities"] == 4 and cal["gallery_images"] == 2 * 4 + 2
    assert cal["identity_retrieval_chance"] == 1 / 4 and cal["identity_retrieval_top5_chance"] == 1.0
    rows = {r["method"]: r["metrics"] for r in out["results"]}
    assert rows["source"]["identity_retrieval"]["mean"] == 1.0 and rows["target"]["identity_retrieval"]["mean"] == 0.0
