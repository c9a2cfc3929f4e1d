"""The temporal metrics and the video protocol on a real clip."""

import math

import numpy as np
import pytest

from faceswaplab.benchmarking.video import video_protocol
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.metrics.temporal import colour_flicker, identity_stability, landmark_jitter


def test_jitter_grows_with_landmark_noise_and_ignores_missing_frames():
    t = np.arange(12.0)[:, None, None]
    base = SyntheticFaces(seed=0).sample(0, 0, size=128).landmarks[None] + t * [2.0, 0.5]  # steady drift
    noisy = base + np.random.default_rng(0).normal(0, 1.0, base.shape)
    assert landmark_jitter(base)[0] < 1e-9 < landmark_jitter(noisy)[0]
    noisy[5] = np.nan  # frames 4, 5 and 6 need frame 5
    value, used = landmark_jitter(noisy)
    assert used == 10 - 3 and math.isfinite(value)


def test_flicker_is_zero_for_a_still_colour_and_large_for_alternating_light():
    face = SyntheticFaces(seed=0).sample(0, 0, size=64)
    still = np.stack([face.image] * 6)
    lms = np.stack([face.landmarks] * 6)
    assert colour_flicker(still, lms) == (0.0, 5)
    flashing = still.astype(float) * np.array([1.0, 0.7] * 3)[:, None, None, None]
    assert colour_flicker(flashing.astype(np.uint8), lms)[0] > 5.0


def test_identity_stability():
    e = np.random.default_rng(0).normal(size=(1, 16)).repeat(5, 0)
    assert identity_stability(e) == (pytest.approx(1.0), 5)
    mixed = np.r_[e[:3], -e[:2]]
    assert identity_stability(mixed)[0] < 0.5
    e[0] = np.nan
    assert identity_stability(e)[1] == 4


@pytest.mark.slow
def test_video_protocol_reads_swaps_against_the_real_clip(tmp_path, media):
    from test_swap import make_clip

    from faceswaplab.swapping import swap_media

    clip = make_clip(media, tmp_path / "clip.mp4", frames=8, audio=False)
    source = media / "photos" / "obama" / "fr_obama.jpg"
    swap_media(clip, tmp_path / "warp.mp4", method="landmark_warp", source=str(source), size=128, progress=False)
    rows = video_protocol(clip, {"same": clip, "warp": tmp_path / "warp.mp4"}, source=source)
    target, same, warp = rows
    assert [r["clip"] for r in rows] == ["target", "same", "warp"] and all(r["frames"] == 8 for r in rows)
    assert same["jitter_excess"] == 0 and same["flicker_excess"] == 0  # the reference through the same path
    assert warp["face_detected"] == 1.0 and warp["identity_to_source"] > target["identity_to_source"]
