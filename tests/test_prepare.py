import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceswaplab.config import config_dir
from faceswaplab.data.sources import IdentityFolders, iter_video_frames, open_source
from faceswaplab.faces import template
from faceswaplab.faces.alignment import transform_points
from faceswaplab.io import ImageReadError, read_image
from faceswaplab.data.preparation import NoFaceError, PrepareError, PrepareOptions, prepare

ROOT = Path(__file__).resolve().parents[1]
INDEX_KEYS = {"crop", "source", "identity", "frame", "fps", "time", "face", "box", "score", "landmarks", "landmarks_crop",
              "transform", "size"}
FAST = dict(workers=1, progress=False, size=96)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _by_name(rows):
    return {Path(r["source"]).name: r for r in rows}


def _jpeg_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _exif_rotated(image: np.ndarray, path: Path) -> None:
    """Store the image as a camera would with orientation 6: pixels turned 90 deg, tag says turn back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(image).transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", quality=92, exif=exif)


# ---------------------------------------------------------------------------------------------------------------
# Reading images


def test_read_image_converts_every_format_to_upright_rgb8(tmp_path, astronaut):
    im = Image.fromarray(astronaut)
    im.convert("L").save(tmp_path / "gray.png")
    rgba = im.convert("RGBA")
    rgba.putalpha(100)
    rgba.save(tmp_path / "rgba.png")
    Image.fromarray(astronaut[..., 1].astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    cv2.imwrite(str(tmp_path / "rgb16.png"), astronaut[..., ::-1].astype(np.uint16) * 257)
    im.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    im.convert("P").save(tmp_path / "palette.gif")
    _exif_rotated(astronaut, tmp_path / "exif.jpg")

    for name in ("gray.png", "rgba.png", "gray16.png", "rgb16.png", "cmyk.jpg", "palette.gif", "exif.jpg"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (512, 512, 3), name
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), astronaut)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb16.png"), astronaut)
    np.testing.assert_array_equal(read_image(tmp_path / "gray16.png")[..., 0], astronaut[..., 1])
    assert np.abs(read_image(tmp_path / "cmyk.jpg").astype(int) - astronaut).mean() < 6
    # EXIF orientation applied: the stored pixels are turned, the returned ones upright.
    assert np.abs(read_image(tmp_path / "exif.jpg").astype(int) - astronaut).mean() < 6


def test_read_image_reports_bad_files(tmp_path, astronaut):
    data = _jpeg_bytes(astronaut)
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    for name, reason in (("truncated.jpg", "truncated"), ("text.jpg", "not a readable image"),
                         ("empty.png", "empty file"), ("missing.png", "not found")):
        with pytest.raises(ImageReadError, match=reason) as err:
            read_image(tmp_path / name)
        assert name in str(err.value)


# ---------------------------------------------------------------------------------------------------------------
# Sources


def test_video_frames_are_sampled_at_the_requested_rate(media):
    video = media / "videos/lp_d18_man_expressions.mp4"  # 30 fps
    frames = list(iter_video_frames(video, fps=2, max_frames=4))
    assert [i for i, _ in frames] == [0, 15, 30, 45]
    assert frames[0][1].shape == (480, 480, 3) and frames[0][1].dtype == np.uint8
    assert [i for i, _ in iter_video_frames(video, max_frames=3)] == [0, 1, 2]


def test_sources_layouts_and_identity_list(tmp_path, media):
    for person in ("john_simm", "john_salley", "obama"):
        (tmp_path / "people" / person / "sub").mkdir(parents=True)
        for p in sorted((media / "photos" / person).glob("*.jpg"))[:2]:
            (tmp_path / "people" / person / "sub" / p.name).symlink_to(p)
    (tmp_path / "people" / "obama" / "notes.txt").write_text("ignored: not media")
    (tmp_path / "ids.txt").write_text("# wanted\nobama\njohn_simm\n\n")

    src = open_source(tmp_path / "people", identities=tmp_path / "ids.txt")
    assert isinstance(src, IdentityFolders)
    assert src.identities() == ["obama", "john_simm"]
    assert [f.identity for f in src.files()] == ["obama"] * 2 + ["john_simm"] * 2
    assert src.files()[0].name.startswith("obama/sub/")
    assert open_source(tmp_path / "people").identities() == ["john_salley", "john_simm", "obama"]
    # A one-identity folder kept in sub-folders needs layout="images" (auto would read them as identities).
    one = open_source(tmp_path / "people" / "obama", layout="images")
    assert one.identities() == ["obama"] and len(one.files()) == 2
    assert open_source(tmp_path / "people" / "obama").identities() == ["sub"]
    with pytest.raises(FileNotFoundError, match="nobody"):
        open_source(tmp_path / "people", identities=["nobody"])


# ---------------------------------------------------------------------------------------------------------------
# The pipeline


@pytest.fixture(scope="module")
def bad_inputs_run(tmp_path_factory, astronaut, media):
    """One run over a folder of good, odd and broken inputs (shared by the tests below)."""
    root = tmp_path_factory.mktemp("bad")
    folder = root / "person"
    folder.mkdir()
    im = Image.fromarray(astronaut)
    im.save(folder / "plain.png")
    data = _jpeg_bytes(astronaut)
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "text.jpg").write_text("this is not an image\n")
    (folder / "empty.png").write_bytes(b"")
    im.convert("L").save(folder / "gray.png")
    rgba = im.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "rgba.png")
    cv2.imwrite(str(folder / "rgb16.png"), astronaut[..., ::-1].astype(np.uint16) * 257)
    im.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    _exif_rotated(astronaut, folder / "exif.jpg")
    Image.fromarray(astronaut[200:220, 200:220]).save(folder / "tiny.png")
    big = cv2.resize(astronaut, None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)
    huge = np.full((4320, 7680, 3), 100, np.uint8)
    huge[1000:1000 + big.shape[0], 3000:3000 + big.shape[1]] = big
    Image.fromarray(huge).save(folder / "huge8k.jpg", quality=85)
    from skimage import data as skdata

    Image.fromarray(skdata.coffee()).save(folder / "coffee.png")
    (folder / "two.jpg").symlink_to(media / "photos/groups/fr_two_people.jpg")
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "garbage.mp4").write_bytes(np.random.RandomState(0).bytes(5000))
    out = root / "out"
    summary = prepare(folder, out, **FAST)
    return summary, out, folder


def test_bad_inputs_are_reported_not_fatal(bad_inputs_run):
    summary, out, _ = bad_inputs_run
    index, report = _rows(out / "index.jsonl"), _rows(out / "report.jsonl")
    reasons = {Path(r["source"]).name: r["reason"] for r in report}
    assert reasons == {
        "truncated.jpg": "unreadable", "text.jpg": "unreadable", "empty.png": "unreadable",
        "zero.mp4": "unreadable", "garbage.mp4": "unreadable", "tiny.png": "too_small",
        "coffee.png": "no_face", "two.jpg": "extra_face",
    }
    written = sorted(Path(r["source"]).name for r in index)
    assert written == sorted(["plain.png", "gray.png", "rgba.png", "rgb16.png", "cmyk.jpg", "exif.jpg",
                              "huge8k.jpg", "two.jpg"])
    assert summary.faces == 8 and summary.items == 15
    assert summary.skipped == dict(Counter(reasons.values()))
    for reason, n in summary.skipped.items():
        assert f"{reason} {n}" in str(summary)
    assert all(r["frame"] is None for r in report) and all("detail" in r for r in report)


def test_index_rows_are_consistent(bad_inputs_run):
    _, out, folder = bad_inputs_run
    for row in _rows(out / "index.jsonl"):
        assert set(row) == INDEX_KEYS
        assert row["identity"] == "person" and row["frame"] is None and row["size"] == 96
        crop = np.asarray(Image.open(out / row["crop"]))
        assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
        lm, lm_crop, m = (np.array(row[k]) for k in ("landmarks", "landmarks_crop", "transform"))
        assert lm.shape == (68, 2) and lm_crop.shape == (68, 2) and m.shape == (2, 3)
        np.testing.assert_allclose(transform_points(lm, m), lm_crop, atol=0.05)
        # Aligned: the inner landmarks sit near the canonical template.
        assert np.abs(lm_crop - template.canonical_landmarks(96))[template.INNER].mean() < 6
        assert row["crop"] == f"faces/{Path(row['source']).stem}_{row['face']}.png"


def test_odd_formats_give_the_same_face_as_the_plain_photo(bad_inputs_run):
    _, out, _ = bad_inputs_run
    rows = _by_name(_rows(out / "index.jsonl"))
    plain = np.array(rows["plain.png"]["landmarks_crop"])
    plain_crop = np.asarray(Image.open(out / rows["plain.png"]["crop"])).astype(int)
    for name in ("rgba.png", "rgb16.png", "cmyk.jpg", "exif.jpg", "huge8k.jpg", "gray.png"):
        assert np.abs(np.array(rows[name]["landmarks_crop"]) - plain).mean() < 2.0, name
        crop = np.asarray(Image.open(out / rows[name]["crop"])).astype(int)
        diff = np.abs(crop.mean(2) - plain_crop.mean(2)).mean() if name == "gray.png" else np.abs(crop - plain_crop).mean()
        assert diff < 12, name
    # EXIF: landmarks are in the upright image; 8K: at full resolution in the big frame.
    np.testing.assert_allclose(rows["exif.jpg"]["box"], rows["plain.png"]["box"], atol=8)
    plain_lm = np.array(rows["plain.png"]["landmarks"])
    huge_lm = np.array(rows["huge8k.jpg"]["landmarks"])
    assert np.abs(huge_lm - ((plain_lm + 0.5) * 4 - 0.5 + [3000, 1000]))[template.INNER].mean() < 6


def test_several_faces_keep_the_largest_and_note_the_rest(bad_inputs_run):
    _, out, _ = bad_inputs_run
    row = _by_name(_rows(out / "index.jsonl"))["two.jpg"]
    extra = [r for r in _rows(out / "report.jsonl") if r["reason"] == "extra_face"]
    assert row["face"] == 0 and len(extra) == 1 and extra[0]["face"] == 1
    width = lambda b: b[2] - b[0]  # noqa: E731
    assert width(row["box"]) > width(extra[0]["box"])


def test_video_frames(tmp_path, media):
    video = media / "videos/lp_d18_man_expressions.mp4"
    summary = prepare(video, tmp_path / "out", fps=2, max_frames=3, **FAST)
    rows = _rows(tmp_path / "out" / "index.jsonl")
    assert [r["frame"] for r in rows] == [0, 15, 30]
    assert {r["identity"] for r in rows} == {"lp_d18_man_expressions"}
    assert [r["crop"] for r in rows] == [f"faces/lp_d18_man_expressions_f{f:06d}_0.png" for f in (0, 15, 30)]
    assert summary.faces == 3 and summary.skipped == {}
    # Landmarks are in the frame's pixels: the face of a 480x480 frame.
    assert all(0 < np.array(r["landmarks"]).min() and np.array(r["landmarks"]).max() < 480 for r in rows)


def test_mtcnn_backend_through_prepare(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    rows = {}
    for backend in ("mtcnn", "dlib"):
        prepare(tmp_path / "astronaut.png", tmp_path / backend, backend=backend, **FAST)
        (rows[backend],) = _rows(tmp_path / backend / "index.jsonl")
    assert np.abs(np.array(rows["mtcnn"]["landmarks_crop"]) - rows["dlib"]["landmarks_crop"]).mean() < 3
    record = (tmp_path / "mtcnn" / "prepare.yaml").read_text()
    assert "MtcnnBackend" in record


def test_select_reference_picks_that_person(tmp_path, media):
    group = media / "photos/groups/fr_obama_and_biden.jpg"  # Biden on the left, Obama (larger) on the right
    opts = dict(FAST, upsample=0, size=64)
    picks = {}
    for person, ref in (("biden", "biden/fr_biden2.jpg"), ("obama", "obama/fr_obama.jpg")):
        out = tmp_path / person
        prepare(group, out, select="reference", reference=media / "photos" / ref, **opts)
        rows = _rows(out / "index.jsonl")
        assert len(rows) == 1
        picks[person] = rows[0]["box"]
        others = _rows(out / "report.jsonl")
        assert others and all(r["reason"] == "extra_face" for r in others)
    centre_x = lambda b: (b[0] + b[2]) / 2  # noqa: E731
    assert centre_x(picks["biden"]) < 1000 < centre_x(picks["obama"])

    prepare(group, tmp_path / "all", select="all", **opts)
    rows = _rows(tmp_path / "all" / "index.jsonl")
    assert len(rows) >= 2 and sorted(r["face"] for r in rows) == list(range(len(rows)))
    assert len({r["crop"] for r in rows}) == len(rows)


def test_identity_folders_with_tight_crops(tmp_path, media):
    root = tmp_path / "celebs"
    for person in ("john_simm", "john_salley", "john_savage"):
        (root / person).mkdir(parents=True)
        for p in sorted((media / "photos" / person).glob("*.jpg"))[:2]:
            (root / person / p.name).symlink_to(p)
    (tmp_path / "ids.txt").write_text("john_savage\njohn_simm\n")
    summary = prepare(root, tmp_path / "out", identities=str(tmp_path / "ids.txt"), **FAST)
    rows = _rows(tmp_path / "out" / "index.jsonl")
    assert [r["identity"] for r in rows] == ["john_savage"] * 2 + ["john_simm"] * 2
    assert summary.identities == {"john_savage": 2, "john_simm": 2}
    assert all(r["crop"].startswith(f"faces/{r['identity']}/") for r in rows)


def test_no_usable_face_is_a_clear_error(tmp_path):
    from skimage import data as skdata

    folder = tmp_path / "nobody"
    folder.mkdir()
    Image.fromarray(skdata.coffee()).save(folder / "coffee.png")
    with pytest.raises(NoFaceError) as err:
        prepare(folder, tmp_path / "out", **FAST)
    assert "nobody" in str(err.value) and str(tmp_path / "out" / "report.jsonl") in str(err.value)
    assert _rows(tmp_path / "out" / "report.jsonl")[0]["reason"] == "no_face"


@pytest.mark.slow  # starts a Python process for the command line
def test_command_line_exits_nonzero_without_faces(tmp_path):
    from skimage import data as skdata

    folder = tmp_path / "nobody"
    folder.mkdir()
    Image.fromarray(skdata.coffee()).save(folder / "coffee.png")
    proc = subprocess.run(
        [sys.executable, "-m", "faceswaplab.prepare", f"input={folder}", f"output={tmp_path / 'cli'}",
         "workers=1", "progress=false"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "no usable face" in out and "nobody" in out and "report.jsonl" in out
    assert "Traceback" not in out
    assert (tmp_path / "cli" / "prepare.yaml").exists() and (tmp_path / "cli" / "prepare.log").exists()


def test_rerun_with_other_options_is_refused(tmp_path, media):
    img = media / "photos/obama/fr_obama2.jpg"
    prepare(img, tmp_path / "out", upsample=0, **FAST)
    # Same options: nothing to do, nothing duplicated.
    again = prepare(img, tmp_path / "out", upsample=0, **FAST)
    assert again.new_items == 0 and again.faces == 1
    with pytest.raises(PrepareError, match="size"):
        prepare(img, tmp_path / "out", **(FAST | {"size": 128}))
    fresh = prepare(img, tmp_path / "out", overwrite=True, upsample=0, **(FAST | {"size": 128}))
    assert fresh.faces == 1 and _rows(tmp_path / "out" / "index.jsonl")[0]["size"] == 128


def test_resume_drops_unfinished_rows_and_partial_lines(tmp_path, media):
    folder = tmp_path / "in"
    folder.mkdir()
    for p in sorted((media / "photos/john_simm").glob("*.jpg"))[:4]:
        (folder / p.name).symlink_to(p)
    out = tmp_path / "out"
    prepare(folder, out, **FAST)
    full = _rows(out / "index.jsonl")
    # Simulate a kill after the last item's index row but before its progress line, mid-way through a line,
    # and with a temporary file left behind.
    progress = (out / "progress.jsonl").read_text().splitlines()
    (out / "progress.jsonl").write_text("\n".join(progress[:-2]) + "\n" + progress[-2][:15])
    with open(out / "index.jsonl", "a") as f:
        f.write('{"crop": "faces/half')
    (out / "faces" / ".x.123.tmp.png").write_bytes(b"partial")
    summary = prepare(folder, out, **FAST)
    assert summary.new_items == 1 and summary.items == 4
    assert len(_rows(out / "progress.jsonl")) == 8  # an item line and a file line per photo, none glued
    assert _rows(out / "index.jsonl") == full
    assert not list(out.rglob("*.tmp*"))


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, media):
    folder = tmp_path / "in"
    folder.mkdir()
    for p in sorted((media / "photos/john_salley").glob("*.jpg"))[:6]:
        (folder / p.name).symlink_to(p)
    (folder / "clip.mp4").symlink_to(media / "videos/lp_d18_man_expressions.mp4")
    out = tmp_path / "out"
    args = [f"input={folder}", f"output={out}", "fps=10", "max_frames=24", "size=96", "progress=false"]
    proc = subprocess.Popen([sys.executable, "-m", "faceswaplab.prepare", *args, "workers=2"],
                            cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            p = out / "progress.jsonl"
            if p.exists() and len(p.read_text().splitlines()) >= 8:
                break
            time.sleep(0.01)
        killed = proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its worker processes, mid-run
    finally:
        proc.wait(timeout=30)
    assert killed, "the run finished before it could be interrupted"
    first = _rows(out / "index.jsonl")
    assert 0 < len(first) < 30

    summary = prepare(folder, out, fps=10, max_frames=24, size=96, workers=1, progress=False)
    rows = _rows(out / "index.jsonl")
    keys = [(r["source"], r["frame"], r["face"]) for r in rows]
    assert len(keys) == len(set(keys)) == summary.faces == 30  # 6 photos + 24 frames, one face each
    assert {r["crop"] for r in rows} == {p.relative_to(out).as_posix() for p in (out / "faces").rglob("*.png")}
    assert not list(out.rglob("*.tmp*"))
    assert summary.skipped == {}


# ---------------------------------------------------------------------------------------------------------------
# Configuration


def test_prepare_yaml_matches_the_python_defaults():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("prepare", overrides=["input=a", "output=b", "backend=mtcnn"])
    assert cfg.backend._target_.endswith("MtcnnBackend")
    defaults = {f.name: f.default for f in dataclasses.fields(PrepareOptions)}
    yaml = {k: v for k, v in cfg.items() if k not in ("input", "output", "backend")}
    assert set(yaml) == set(defaults) - {"backend"}
    assert yaml == {k: v for k, v in defaults.items() if k != "backend"}
    assert cfg.margin == template.DEFAULT_MARGIN
