"""The swap command on real photos and videos: face choice, video round trips, resume, labels, bad input."""

import json
import subprocess
import sys
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import compose_train
from faceswaplab.faces.backends import DlibBackend, FaceEncoder
from faceswaplab.faces.pipeline import find_faces
from faceswaplab.faces.tracking import FaceTracker, OneEuroFilter
from faceswaplab.io import read_image
from faceswaplab.provenance import TRAINED_ALGORITHMIC_MEDIA, read_provenance
from faceswaplab.swapping import NoFaceError, SmoothingOptions, SwapError, swap_media

WARP = {"method": "landmark_warp", "size": 128, "progress": False}


@pytest.fixture(scope="module")
def source(media):
    return str(media / "photos" / "biden" / "fr_biden.jpg")


def make_clip(media, path, frames=16, size=(240, 240), rate=Fraction(30), audio=True, blank=0, blank_at=()):
    """A short H.264 clip cut from a real video: `frames` frames resized to `size`, encoded at `rate`, with the
    source's audio packets for the same duration; the first `blank` frames and those in `blank_at` are a flat
    grey (no face)."""
    src = av.open(str(media / "videos" / "lp_d18_man_expressions.mp4"))
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=rate)
    vs.width, vs.height = size
    odd = size[0] % 2 or size[1] % 2
    vs.pix_fmt = "yuv444p" if odd else "yuv420p"
    ain = src.streams.audio[0]
    aout = out.add_stream_from_template(ain) if audio else None
    duration = frames / rate
    for i, frame in enumerate(src.decode(src.streams.video[0])):
        if i == frames:
            break
        img = cv2.resize(frame.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA)
        if i < blank or i in blank_at:
            img[:] = 128
        for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(p)
    for p in vs.encode():
        out.mux(p)
    if audio:
        src.seek(0)
        for p in src.demux(ain):
            if p.size and p.pts is not None and p.pts * p.time_base < duration:
                p.stream = aout
                out.mux(p)
    out.close()
    src.close()
    return path


def read_video(path):
    """(frames (N, H, W, 3), average rate, audio duration in seconds or None)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        rate = v.average_rate
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(v)])
    audio = None
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            packets = [p for p in c.demux(a) if p.size]
            start = min(p.pts for p in packets)
            audio = float((max(p.pts + p.duration for p in packets) - start) * a.time_base)
    return frames, rate, audio


# ------------------------------------------------------------------------------------------------------ photos


def test_reference_swaps_only_that_person_in_a_group_photo(tmp_path, media, source):
    # Halved (faces still ~100 px), to keep the test quick; saved losslessly.
    photo = read_image(media / "photos" / "groups" / "fr_obama_and_biden.jpg")
    group = tmp_path / "group.png"
    Image.fromarray(cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)).save(group)
    reference = media / "photos" / "obama" / "fr_obama.jpg"
    out = tmp_path / "out.png"
    summary = swap_media(group, out, source=source, reference=str(reference), **WARP)
    assert summary.faces == 1 and summary.images == 1
    before, after = read_image(group), read_image(out)
    assert after.shape == before.shape

    # Which detected face is Obama, by dlib's descriptor against the reference photo.
    backend, encoder = DlibBackend(), FaceEncoder()
    faces = sorted(find_faces(backend, before, 1024, None), key=lambda f: -f.area)  # as the swap detects them
    assert len(faces) >= 2
    ref_img = read_image(reference)
    ref = encoder(ref_img, max(find_faces(backend, ref_img, 1024, None), key=lambda f: f.area))
    best = int(np.argmin([np.linalg.norm(encoder(before, f) - ref) for f in faces]))
    obama, others = faces[best], faces[:best] + faces[best + 1:]

    def box(face, grow=0.1):
        x0, y0, x1, y1 = face.box
        w, h = x1 - x0, y1 - y0
        return (slice(max(int(y0 - grow * h), 0), int(y1 + grow * h)),
                slice(max(int(x0 - grow * w), 0), int(x1 + grow * w)))

    for other in others:  # every other face: not one pixel changed
        assert np.array_equal(after[box(other)], before[box(other)])
    diff = np.abs(after[box(obama, 0)].astype(int) - before[box(obama, 0)]).mean()
    assert diff > 3  # the chosen one was swapped

    both = swap_media(group, tmp_path / "all.png", source=source, select="all", **WARP)
    assert both.faces == len(faces)
    changed = read_image(tmp_path / "all.png")
    assert np.abs(changed[box(others[0], 0)].astype(int) - before[box(others[0], 0)]).mean() > 3


def test_image_outputs_in_every_format_are_labelled_and_can_be_badged(tmp_path, astronaut, source):
    src = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(src)
    for suffix in (".png", ".jpg", ".webp"):
        out = tmp_path / f"out{suffix}"
        swap_media(src, out, source=source, **WARP)
        label = read_provenance(out)
        assert label["synthetic"] and label["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
        assert label["method"] == "landmark_warp"
        assert read_image(out).shape == astronaut.shape
    plain = read_image(tmp_path / "out.png")
    swap_media(src, tmp_path / "badge.png", source=source, label={"visible": True}, **WARP)
    badged = read_image(tmp_path / "badge.png")
    changed = np.argwhere((badged != plain).any(-1))
    assert len(changed) > 100 and changed.min(0)[0] > 512 * 0.8 and changed.min(0)[1] > 512 * 0.5  # bottom right


def test_turning_labels_off_is_explicit_and_warned(tmp_path, astronaut, source, caplog):
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    with caplog.at_level("WARNING", logger="faceswaplab.swap"):
        swap_media(src, tmp_path / "out.png", source=source, label={"metadata": False}, **WARP)
    assert "label.metadata=false" in caplog.text
    assert read_provenance(tmp_path / "out.png")["synthetic"] is False


def test_deepfakes_checkpoint_swaps_a_real_photo(tmp_path, astronaut):
    from faceswaplab.train import train

    tiny = ["method=deepfakes", "method.enc_width=8", "method.latent=32", "method.dense_channels=32",
            "method.code_channels=16", "method.dec_width=16", "data.image_size=32", "data.batch_size=4",
            "data.num_workers=0", "data.persistent_workers=false", "data.A.num_samples=40",
            "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false", "callbacks.preview.pairs=1", "~logger"]
    run = tmp_path / "run"
    train(compose_train(*tiny, run_dir=run))
    src = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(src, quality=95)
    out = tmp_path / "out.jpg"
    for direction in ("AtoB", "BtoA"):
        summary = swap_media(src, out, checkpoint=run, direction=direction, overwrite=True, progress=False)
        assert summary.faces == 1
        result = read_image(out)
        assert result.shape == astronaut.shape
        assert np.abs(result.astype(int) - read_image(src)).mean() > 0.5
        label = read_provenance(out)
        assert label["synthetic"] and label["method"] == "deepfakes"
        assert label["checkpoint"] == "run/checkpoints/last.ckpt"  # no private path beyond the run folder


# ------------------------------------------------------------------------------------------------------ videos


@pytest.mark.parametrize("size,rate,audio", [((240, 240), Fraction(30), True),
                                             ((161, 121), Fraction(25), False),
                                             ((200, 150), Fraction(30000, 1001), True)])
def test_video_round_trip_keeps_frames_rate_size_and_audio(tmp_path, media, source, size, rate, audio):
    clip = make_clip(media, tmp_path / "clip.mp4", frames=12, size=size, rate=rate, audio=audio)
    out = tmp_path / "out" / "swapped.mp4"
    summary = swap_media(clip, out, source=source, video={"segment_frames": 5}, **WARP)
    assert summary.videos == 1 and summary.faces == 12 and summary.frames_without_face == 0
    f_in, r_in, a_in = read_video(clip)
    f_out, r_out, a_out = read_video(out)
    assert f_out.shape == f_in.shape  # frame count and resolution (odd sizes included)
    assert r_out == r_in == rate
    if audio:
        assert abs(a_out - a_in) <= 1 / float(rate)
    else:
        assert a_out is None
    assert np.abs(f_out.astype(int) - f_in).mean() > 1  # faces were swapped
    assert read_provenance(out)["synthetic"]
    assert not (tmp_path / "out" / "swapped.mp4.parts").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["swapped.mp4"]


def test_cut_of_the_real_video_with_max_frames_keeps_audio_in_step(tmp_path, media, source):
    video = media / "videos" / "lp_d18_man_expressions.mp4"
    out = tmp_path / "cut.mp4"
    swap_media(video, out, source=source, video={"max_frames": 9}, **WARP)
    frames, rate, audio = read_video(out)
    assert len(frames) == 9 and rate == 30 and frames.shape[1:3] == (480, 480)
    assert abs(audio - 9 / 30) <= 1 / 30


class Interrupt(Exception):
    pass


def test_interrupted_video_resumes_from_its_segments_to_the_same_result(tmp_path, media, source):
    clip = make_clip(media, tmp_path / "clip.mp4", frames=14, blank=3)
    full = swap_media(clip, tmp_path / "full.mp4", source=source, video={"segment_frames": 6}, **WARP)
    assert full.frames_without_face == 3 and full.faces == 11

    out = tmp_path / "resumed.mp4"

    def stop(done, total):
        assert total == 14
        if done == 9:
            raise Interrupt

    with pytest.raises(Interrupt):
        swap_media(clip, out, source=source, video={"segment_frames": 6}, on_progress=stop, **WARP)
    parts = tmp_path / "resumed.mp4.parts"
    assert not out.exists()
    assert sorted(p.name for p in parts.iterdir()) == ["progress.json", "seg_00000.mp4"]
    assert len(json.loads((parts / "progress.json").read_text())["segments"]) == 1

    summary = swap_media(clip, out, source=source, video={"segment_frames": 6}, **WARP)
    assert summary.resumed_segments == 1
    # Frames, faces and faceless frames are all counted over the whole video, the earlier segment included.
    assert (summary.frames, summary.faces, summary.frames_without_face) == (14, 11, 3)
    assert "swapped 11 faces in 14 images/frames; 3 without a face" in str(summary)
    a, _, audio_a = read_video(tmp_path / "full.mp4")
    b, _, audio_b = read_video(out)
    assert np.array_equal(a, b) and audio_a == audio_b
    assert not parts.exists()
    # Frames without a face are copied (up to the lossy re-encode).
    blank_in, _, _ = read_video(clip)
    assert np.abs(b[:3].astype(int) - blank_in[:3]).mean() < 2


def test_resume_with_other_settings_is_refused(tmp_path, media, source):
    clip = make_clip(media, tmp_path / "clip.mp4", frames=8, audio=False)
    out = tmp_path / "o.mp4"
    with pytest.raises(Interrupt):
        swap_media(clip, out, source=source, video={"segment_frames": 3}, on_progress=_raise_at(4), **WARP)
    with pytest.raises(SwapError, match="other settings"):
        swap_media(clip, out, source=source, video={"segment_frames": 3}, blend="feather", **WARP)
    swap_media(clip, out, source=source, video={"segment_frames": 3}, blend="feather", overwrite=True, **WARP)
    assert len(read_video(out)[0]) == 8


def _raise_at(n):
    def stop(done, total):
        if done == n:
            raise Interrupt
    return stop


# ------------------------------------------------------------------------------------------------------ bad input


def test_bad_inputs_fail_clearly_and_write_nothing(tmp_path, media, source, astronaut):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(SwapError, match="broken.jpg"):
        swap_media(broken, tmp_path / "o1.png", source=source, **WARP)

    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(flat)
    with pytest.raises(NoFaceError, match="no face to swap in .*flat.png"):
        swap_media(flat, tmp_path / "o2.png", source=source, **WARP)
    with pytest.raises(NoFaceError, match="reference photo .*flat.png"):
        swap_media(media / "photos" / "obama" / "fr_obama.jpg", tmp_path / "o3.png", source=source,
                   reference=str(flat), **WARP)
    with pytest.raises(NoFaceError, match="source photo"):
        swap_media(media / "photos" / "obama" / "fr_obama.jpg", tmp_path / "o3.png", source=str(flat), **WARP)
    with pytest.raises(SwapError, match="source=<photo>"):
        swap_media(media / "photos" / "obama" / "fr_obama.jpg", tmp_path / "o3.png", **WARP)
    with pytest.raises(SwapError, match="checkpoint"):
        swap_media(flat, tmp_path / "o4.png", checkpoint=tmp_path / "nothing", progress=False)
    with pytest.raises(SwapError, match="trained first"):
        swap_media(flat, tmp_path / "o4.png", method="deepfakes", progress=False)

    noise = tmp_path / "noface.mp4"
    with av.open(str(noise), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for i in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((64, 96, 3), 40 * i, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(NoFaceError, match="any of the 5 frames"):
        swap_media(noise, tmp_path / "o5.mp4", source=source, **WARP)
    bad_video = tmp_path / "bad.mp4"
    bad_video.write_bytes(b"\x00" * 100)
    with pytest.raises(SwapError, match="bad.mp4"):
        swap_media(bad_video, tmp_path / "o6.mp4", source=source, **WARP)

    clip = make_clip(media, tmp_path / "clip.mp4", frames=4, audio=False)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(SwapError, match="truncated.mp4: not a readable video"):
        swap_media(truncated, tmp_path / "o7.mp4", source=source, **WARP)
    with pytest.raises(SwapError, match="videos are written as"):
        swap_media(clip, tmp_path / "o8.avi", source=source, **WARP)

    good = tmp_path / "good.png"
    Image.fromarray(astronaut).save(good)
    existing = tmp_path / "exists.png"
    existing.write_bytes(b"keep me")
    with pytest.raises(SwapError, match="exists.*overwrite=true"):
        swap_media(good, existing, source=source, **WARP)
    assert existing.read_bytes() == b"keep me"
    swap_media(good, existing, source=source, overwrite=True, **WARP)
    assert read_provenance(existing)["synthetic"]
    with pytest.raises(SwapError, match="images are written as"):
        swap_media(good, tmp_path / "o.bmp", source=source, **WARP)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["broken.jpg", "flat.png", "noface.mp4", "bad.mp4", "clip.mp4", "truncated.mp4", "good.png", "exists.png"])


def test_folder_keeps_relative_paths_and_reports_skips(tmp_path, media, source, astronaut):
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(astronaut).save(root / "a.png")
    Image.fromarray(astronaut).save(root / "sub" / "deeper" / "b.bmp")
    Image.fromarray(np.full((100, 100, 3), 7, np.uint8)).save(root / "sub" / "flat.jpg")
    (root / "sub" / "broken.png").write_bytes(b"junk")
    make_clip(media, root / "sub" / "clip.mp4", frames=4, audio=False)
    out = tmp_path / "out"
    summary = swap_media(root, out, source=source, **WARP)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "sub/clip.mp4", "sub/deeper/b.png"]
    assert summary.images == 2 and summary.videos == 1
    assert set(summary.skipped) == {"sub/flat.jpg", "sub/broken.png"}
    assert "no face" in summary.skipped["sub/flat.jpg"] and "unreadable" in summary.skipped["sub/broken.png"]
    assert all(read_provenance(out / w)["synthetic"] for w in written)
    with pytest.raises(SwapError, match="not empty"):
        swap_media(root, out, source=source, **WARP)
    with pytest.raises(SwapError, match="inside the input"):
        swap_media(root, root / "out", source=source, **WARP)


# ------------------------------------------------------------------------------------------------------ smoothing


def test_one_euro_filter_removes_jitter_and_resets_on_jumps(astronaut):
    face = DlibBackend().faces(astronaut)[0].landmarks
    rng = np.random.default_rng(0)
    filt = OneEuroFilter()
    noisy = [face + rng.normal(0, 1.5, face.shape) for _ in range(60)]
    smooth = [filt(x, 1 / 30) for x in noisy]
    raw_jitter = np.abs(np.diff(noisy[30:], axis=0)).mean()
    smooth_jitter = np.abs(np.diff(smooth[30:], axis=0)).mean()
    assert smooth_jitter < 0.35 * raw_jitter
    moved = face + 200.0  # a cut: no lag after a jump
    assert np.allclose(filt(moved, 1 / 30), moved)

    tracker = FaceTracker(SmoothingOptions())
    a, b = face, face + [300.0, 0.0]
    tracker([a, b], 1 / 30)
    out = tracker([b + 0.5, a + 0.5], 1 / 30)  # faces keep their own filters whatever the detection order
    assert np.abs(out[0] - b).mean() < 0.5 and np.abs(out[1] - a).mean() < 0.5


# ------------------------------------------------------------------------------------------------------ command line


@pytest.mark.slow
def test_command_line_swaps_and_refuses_to_overwrite(tmp_path, astronaut, source):
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    cmd = [sys.executable, "-m", "faceswaplab.swap", "method=landmark_warp", "method.blend=feather",
           f"source={source}", f"input={src}", f"output={tmp_path / 'o.jpg'}", "size=128", "progress=false"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert read_provenance(tmp_path / "o.jpg")["method"] == "landmark_warp"
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 1 and "overwrite=true" in again.stdout + again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "o.jpg"]  # no log or config files left


def test_swap_photo_from_python_matches_the_command_on_a_whole_photo(tmp_path, media, source):
    """`method.swap_photo(photo, source)` does in memory what swap_media does to a file, for numpy and PIL."""
    from faceswaplab.methods.landmark_warp import LandmarkWarp

    target = media / "photos" / "obama" / sorted(p.name for p in (media / "photos" / "obama").iterdir())[0]
    swap_media(target, tmp_path / "out.png", source=source, **WARP)
    written = read_image(tmp_path / "out.png")
    method = LandmarkWarp()
    photo = read_image(target)
    out = method.swap_photo(photo, read_image(source), size=128)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - written).mean() < 0.5  # the same swap, up to the file's encoding
    assert np.abs(out.astype(int) - photo).mean() > 1  # and a swap it is
    pil = method.swap_photo(Image.fromarray(photo), source, size=128)
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), out)
    with pytest.raises(NoFaceError, match="no face to swap"):
        method.swap_photo(np.full((200, 200, 3), 128, np.uint8), source, size=128)


def test_swap_video_from_python_equals_the_command(tmp_path, media, source):
    from faceswaplab.methods.build import build_method

    clip = make_clip(media, tmp_path / "clip.mp4", frames=6, audio=False)
    method = build_method("landmark_warp")
    summary = method.swap_video(clip, tmp_path / "py.mp4", source=Image.open(source), size=128, progress=False)
    swap_media(clip, tmp_path / "cli.mp4", source=source, **WARP)
    a, _, _ = read_video(tmp_path / "py.mp4")
    b, _, _ = read_video(tmp_path / "cli.mp4")
    assert summary.videos == 1 and len(a) == 6 and summary.outputs == [str(tmp_path / "py.mp4")]
    assert np.array_equal(a, b)
