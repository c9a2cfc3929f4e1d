"""Preparation spread over jobs: three chunks run as a Hydra multirun, then merged, give the same index, report and
crops as one run over the whole input (shared photos, a group photo and video frames)."""

import subprocess
import sys
from pathlib import Path

import pytest

from faceswaplab.data.preparation import PrepareError, prepare

OPTS = dict(size=64, fps=10, max_frames=4, layout="identities")


@pytest.fixture
def inputs(tmp_path, media) -> Path:
    """Identity folders of links to the shared media: two people's photos, a group photo, four video frames."""
    root = tmp_path / "in"
    for person in ("john_simm", "obama"):
        (root / person).mkdir(parents=True)
        for p in sorted((media / "photos" / person).glob("*.jpg"))[:2]:
            (root / person / p.name).symlink_to(p)
    (root / "groups").mkdir()
    (root / "groups" / "two.jpg").symlink_to(media / "photos" / "groups" / "fr_two_people.jpg")
    (root / "woman").mkdir()
    (root / "woman" / "clip.mp4").symlink_to(media / "videos" / "lp_d3_woman_expressions.mp4")
    return root


def prepare_cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "faceswaplab.prepare", *args, *(f"{k}={v}" for k, v in OPTS.items()),
           "workers=1", "progress=false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_three_chunks_then_merge_equal_one_run(tmp_path, inputs):
    single = prepare(inputs, tmp_path / "single", workers=1, progress=False, **OPTS)
    out = tmp_path / "chunked"
    prepare_cli("-m", f"input={inputs}", f"output={out}", "num_chunks=3", "chunk=range(0,3)")
    assert sorted(p.name for p in (out / "chunks").iterdir() if p.is_dir()) == ["0-of-3", "1-of-3", "2-of-3"]
    assert (out / "chunks" / "2-of-3" / "prepare.log").is_file()  # each job's log beside its rows
    again = prepare(inputs, out, chunk=1, num_chunks=3, workers=1, progress=False, **OPTS)
    assert again.new_items == 0 and again.items > 0  # a finished chunk resumes to nothing left to do
    prepare_cli(f"input={inputs}", f"output={out}", "num_chunks=3", "merge=true")

    for name in ("index.jsonl", "report.jsonl", "progress.jsonl"):
        assert (out / name).read_text() == (tmp_path / "single" / name).read_text(), name
    assert "extra_face" in (out / "report.jsonl").read_text()
    crops = sorted(p.relative_to(out / "faces") for p in (out / "faces").rglob("*.png"))
    assert len(crops) == single.faces and crops == sorted(
        p.relative_to(tmp_path / "single" / "faces") for p in (tmp_path / "single" / "faces").rglob("*.png"))
    assert all((out / "faces" / c).read_bytes() == (tmp_path / "single" / "faces" / c).read_bytes() for c in crops)
    # The merged folder is a finished run: preparing it again does nothing.
    assert prepare(inputs, out, workers=1, progress=False, **OPTS).new_items == 0


def test_merge_refuses_missing_chunks_and_bad_settings(tmp_path, inputs):
    with pytest.raises(PrepareError, match=r"chunk 0 of 3 was never run; rerun it with chunk=0 num_chunks=3"):
        prepare(inputs, tmp_path / "out", num_chunks=3, merge=True, workers=1, **OPTS)
    with pytest.raises(ValueError, match="num_chunks=3 needs chunk="):
        prepare(inputs, tmp_path / "out", num_chunks=3, workers=1, **OPTS)
    with pytest.raises(ValueError, match="chunk must be an integer from 0 to num_chunks-1=2, got 3"):
        prepare(inputs, tmp_path / "out", chunk=3, num_chunks=3, workers=1, **OPTS)
