"""The video swap's fast path on real clips: landmarks refitted between detections (and the detector when that
fails), faces of several frames swapped in one call, threads for decoding, pasting and encoding."""

import itertools

import numpy as np
import pytest
import torch

from faceswaplab.faces.tracking import FaceTracker
from faceswaplab.methods.deepfakes import DeepFakes
from faceswaplab.swapping import FaceSwapper, SwapOptions, swap_media
from faceswaplab.video import iter_frames, prefetch
from test_swap import make_clip, read_video

WARP = {"method": "landmark_warp", "size": 128, "progress": False}


@pytest.fixture(scope="module")
def source(media):
    return str(media / "photos" / "biden" / "fr_biden.jpg")


@pytest.fixture(scope="module")
def frames(media):
    """The first 6 frames of a real 480x480 clip of one face."""
    return [f for _, _, f in itertools.islice(iter_frames(media / "videos" / "lp_d18_man_expressions.mp4"), 6)]


def counting(swapper):
    """Count the swapper's detector searches (the real ones run)."""
    calls = []
    faces = swapper.faces

    def counted(*args, **kwargs):
        calls.append(1)
        return faces(*args, **kwargs)

    swapper.faces = counted
    return calls


def iod_error(a, b):
    return np.linalg.norm(a - b, axis=1).mean() / np.linalg.norm(a[36:42].mean(0) - a[42:48].mean(0))


def test_refitted_landmarks_follow_detection_and_a_lost_face_runs_the_detector(frames, source):
    opts = SwapOptions.from_dict({"source": source, "size": 128, "smoothing": {"enabled": False}, "device": "cpu"})
    swapper = FaceSwapper(opts, method="landmark_warp")
    calls = counting(swapper)
    tracker = FaceTracker(opts.smoothing)
    for i, frame in enumerate(frames):
        (lm,) = swapper.locate(frame, tracker, 1 / 30, index=i)
        assert iod_error(swapper.faces(frame)[0].landmarks, lm) < 0.05  # as close as per-frame detection
        calls.pop()  # the reference call above
    assert len(calls) == 1  # only frame 0 (a whole-frame search) ran the detector

    blank = np.full_like(frames[0], 128)  # the face is gone: the refit fails its check, the detector runs
    assert tracker.follow(blank, swapper.backend.landmarks, 1 / 30, opts.video.track_similarity) is None
    assert swapper.locate(blank, tracker, 1 / 30, index=len(frames)) == []
    assert len(calls) == 2 and tracker.tracks == []  # searched near the last face, then the whole frame
    (lm,) = swapper.locate(frames[0], tracker, 1 / 30, index=len(frames) + 1)  # found again by the detector
    assert len(calls) == 3 and iod_error(swapper.faces(frames[0])[0].landmarks, lm) < 1e-9


def test_a_face_that_vanishes_mid_video_is_left_unswapped_there(tmp_path, media, source):
    clip = make_clip(media, tmp_path / "clip.mp4", frames=10, audio=False, blank_at=(4, 5))
    summary = swap_media(clip, tmp_path / "out.mp4", source=source, **WARP)
    assert (summary.faces, summary.frames_without_face) == (8, 2)
    a, _, _ = read_video(clip)
    b, _, _ = read_video(tmp_path / "out.mp4")
    diff = np.abs(b.astype(int) - a).mean(axis=(1, 2, 3))
    assert (diff[[4, 5]] < 2).all() and (np.delete(diff, [4, 5]) > 2 * diff[[4, 5]].max()).all()


@pytest.mark.parametrize("name", ["landmark_warp", "deepfakes"])
def test_faces_of_a_batch_of_frames_equal_those_swapped_one_frame_at_a_time(frames, source, name):
    if name == "deepfakes":
        torch.manual_seed(0)
        method, options = DeepFakes(image_size=32, **DeepFakes.tiny).eval(), {}
    else:
        method, options = "landmark_warp", {"source": source, "size": 128}
    swapper = FaceSwapper(SwapOptions.from_dict({**options, "device": "cpu"}), method=method)
    landmarks = [swapper.locate(f) for f in frames]
    batched = swapper.swap_aligned([swapper.align(f, lms) for f, lms in zip(frames, landmarks)])
    for frame, lms, faces in zip(frames, landmarks, batched):
        alone = swapper.swap_aligned([swapper.align(frame, lms)])[0]
        assert len(faces) == len(alone) == 1
        assert np.abs(faces[0][3].astype(int) - alone[0][3]).max() <= (1 if name == "deepfakes" else 0)
        one, _ = swapper(frame)
        assert np.array_equal(swapper.paste(frame, alone), one)
        assert np.abs(swapper.paste(frame, faces).astype(int) - one).mean() < 0.01


def test_batches_and_threads_give_the_same_frames_in_order(tmp_path, media, source):
    clip = make_clip(media, tmp_path / "clip.mp4", frames=11, audio=True)
    plain = {"batch_size": 1, "workers": 0, "segment_frames": 4}
    fast = {"batch_size": 3, "workers": 2, "segment_frames": 4}
    a = swap_media(clip, tmp_path / "a.mp4", source=source, video=plain, **WARP)
    b = swap_media(clip, tmp_path / "b.mp4", source=source, video=fast, **WARP)
    fa, _, audio_a = read_video(tmp_path / "a.mp4")
    fb, _, audio_b = read_video(tmp_path / "b.mp4")
    assert len(fa) == 11 and np.array_equal(fa, fb) and audio_a == audio_b
    assert (a.faces, b.faces) == (11, 11)
    assert np.abs(np.diff(fa.astype(int), axis=0)).mean(axis=(1, 2, 3)).min() > 0  # consecutive frames differ
    assert {"decode", "track", "align", "swap", "paste", "encode"} <= set(b.stages.seconds)


def test_prefetch_keeps_order_raises_in_place_and_stops_early():
    closed = []

    def items(fail_at=None):
        try:
            for i in range(20):
                if i == fail_at:
                    raise ValueError("broken at 5")
                yield i
        finally:
            closed.append(True)

    assert list(prefetch(items(), 3)) == list(range(20))
    got = []
    with pytest.raises(ValueError, match="broken at 5"):
        for x in prefetch(items(fail_at=5), 3):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
    stream = prefetch(items(), 2)
    assert next(stream) == 0
    stream.close()
    assert closed == [True, True, True]
