"""Skin tone (ITA) against the renderer's known skin colours, and the per-group breakdown of the benchmark."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from faceswaplab.benchmarking.fairness import breakdown, pose_group, target_groups
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.images import to_tensor
from faceswaplab.metrics.skin_tone import ITA_GROUPS, individual_typology_angle, ita_group, ita_of_rgb


def test_ita_ranks_the_renderers_skin_tones():
    """Each identity's estimated ITA (median of 3 renders, shaded by random lighting) against the ITA of the flat skin
    colour the renderer was given: the order is kept, and the lighting only darkens."""
    gen = SyntheticFaces(seed=0, num_identities=24)
    estimated, given = [], []
    for i in range(24):
        renders = [gen.sample(i, k, size=64) for k in range(3)]
        ita = individual_typology_angle(np.stack([r.image for r in renders]), np.stack([r.landmarks for r in renders]))
        estimated.append(float(np.median(ita.numpy())))
        given.append(ita_of_rgb(gen.identity(i).skin))
    assert spearmanr(estimated, given).statistic > 0.9
    offset = np.subtract(estimated, given)
    assert np.median(offset) < 0 and np.abs(offset).max() < 45  # shading lowers L*; the scale spans ~110 deg
    # the renderer's palette spans the published scale, from very light to dark
    assert {ita_group(a) for a in given} >= {"very light", "light", "brown", "dark"}


def test_ita_is_nan_without_landmarks_and_uint8_equals_float():
    face = SyntheticFaces(seed=0).sample(0, 0, size=64)
    lms = np.stack([face.landmarks, np.full((68, 2), np.nan)])
    a = individual_typology_angle(np.stack([face.image] * 2), lms)
    b = individual_typology_angle(torch.stack([to_tensor(face.image)] * 2), lms)
    assert math.isfinite(a[0]) and math.isnan(a[1]) and abs(a[0] - b[0]) < 0.5
    assert [n for n, _ in ITA_GROUPS][0] == "very light" and pose_group(14.9) == "frontal"


def test_breakdown_counts_every_pair_and_reports_the_largest_gap():
    groups = {"skin_tone": ["light"] * 6 + ["dark"] * 6 + ["tan"] * 2, "head_pose": ["frontal"] * 14}
    values = np.r_[np.full(6, 0.8), np.full(6, 0.5), [0.1, np.nan]]
    cells, gaps = breakdown({"m": {"identity": values}}, groups, resamples=100, min_group=5)
    skin = {c["group"]: c for c in cells if c["axis"] == "skin_tone"}
    assert [g for g in skin] == ["light", "tan", "dark"]  # the scale's order
    assert sum(c["pairs"] for c in skin.values()) == 14 and skin["tan"]["failed"] == 1 and skin["tan"]["n"] == 1
    gap = next(g for g in gaps if g["axis"] == "skin_tone")
    assert gap["gap"] == pytest.approx(0.3) and (gap["high"], gap["low"]) == ("light", "dark")  # tan: too few pairs
    assert math.isnan(next(g for g in gaps if g["axis"] == "head_pose")["gap"])  # one group: no gap


def test_target_groups_of_renders():
    gen = SyntheticFaces(seed=0)
    renders = [gen.sample(i, 10, size=64) for i in range(6)]
    images = torch.stack([to_tensor(r.image) for r in renders])
    g = target_groups(images, torch.as_tensor(np.stack([r.landmarks for r in renders])))
    assert len(g["skin_tone"]) == len(g["head_pose"]) == 6 and "unknown" not in g["skin_tone"]
    truth = [pose_group(float(r.pose[0])) for r in renders]  # the renderer's own yaw
    assert np.mean([a == b for a, b in zip(g["head_pose"], truth)]) >= 0.5
