"""The pieces of the benchmark protocol that keep it honest: outputs that are not faces score as such, retrieval
chance, the verification threshold, paired tests with Holm's correction, KID on few samples."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import wilcoxon

from faceswaplab.benchmarking.significance import holm, paired_tests, wilcoxon_p
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.images import to_tensor
from faceswaplab.metrics import (KID, FaceDetected, IdentityMatch, IdentityRetrieval, LandmarkNME, SyntheticEmbedder,
                                 equal_error_threshold, identity_gallery, predict_landmarks)


@pytest.fixture(scope="module")
def faces():
    """12 renders of 4 identities at 64 px: images (12, 3, 64, 64), landmarks, identities."""
    gen = SyntheticFaces(seed=0)
    renders = [gen.sample(i % 4, 300 + i, size=64) for i in range(12)]
    return (torch.stack([to_tensor(r.image) for r in renders]),
            torch.as_tensor(np.stack([r.landmarks for r in renders])), torch.arange(12) % 4)


def test_outputs_without_a_face_are_scored_and_score_low(faces):
    images, landmarks, ids = faces
    noise = torch.rand(len(images), 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1

    # Every crop gets landmarks from the predictor in the known face box: nothing is left out of the attribute means.
    predicted = predict_landmarks(noise, 128)
    assert predicted.shape == (12, 68, 2) and torch.isfinite(predicted).all()
    nme = {}
    for name, x in (("faces", images), ("noise", noise)):
        m = LandmarkNME()
        m.update(landmarks, output_landmarks=predict_landmarks(x, 128))
        assert m.num_failed() == 0
        nme[name] = float(m.compute())
    assert nme["noise"] > 2 * nme["faces"]

    detected = {}
    for name, x in (("faces", images), ("noise", noise)):
        m = FaceDetected(size=128)
        m.update(x)
        detected[name] = float(m.compute())
    assert detected["faces"] >= 0.75 and detected["noise"] == 0.0

    embedder = SyntheticEmbedder()
    emb = embedder.embed(images, landmarks)
    threshold, eer = equal_error_threshold(emb, ids)
    assert 0 <= eer < 0.2
    match = {}
    for name, x, lm in (("faces", images.roll(4, 0), landmarks.roll(4, 0)), ("noise", noise, predicted)):
        m = IdentityMatch(embedder, threshold=threshold)
        m.update(x, images, output_landmarks=lm, source_landmarks=landmarks)  # image i+4 has i's identity
        match[name] = float(m.compute())
    assert match["faces"] >= 0.75 and match["noise"] <= 0.25


def test_retrieval_top_k_and_chance(faces):
    images, landmarks, ids = faces
    embedder = SyntheticEmbedder()
    gallery = identity_gallery(embedder.embed(images, landmarks), ids)
    top1, top5 = IdentityRetrieval(embedder, *gallery), IdentityRetrieval(embedder, *gallery, k=5)
    assert top1.chance() == 0.25 and top5.chance() == 1.0  # k is capped at the gallery size
    for m in (top1, top5):
        m.update(images, ids, output_landmarks=landmarks)
    assert float(top1.compute()) >= 0.9 and float(top5.compute()) == 1.0


def test_equal_error_threshold_separates_known_scores():
    # Two identities on two axes; the genuine pairs are similar, impostors orthogonal.
    e = torch.tensor([[1.0, 0.05], [1.0, -0.05], [0.05, 1.0], [-0.05, 1.0]])
    t, eer = equal_error_threshold(e, [0, 0, 1, 1])
    assert eer == 0.0 and 0.0 < t <= 0.996  # any threshold between the impostors (0) and the genuine pairs
    with pytest.raises(ValueError, match="two images of one identity"):
        equal_error_threshold(e[:2], [0, 1])


def test_holm_and_wilcoxon_against_direct_computation():
    p = [0.01, 0.04, 0.03, 0.5]
    # Holm: sorted p times (m - rank), running maximum, capped at 1.
    assert holm(p).tolist() == pytest.approx([0.04, 0.09, 0.09, 0.5])
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + 0.8 + rng.normal(scale=0.1, size=30)
    b[3] = np.nan  # a pair one row could not score is left out of that test
    got, n = wilcoxon_p(a, b)
    keep = np.isfinite(b)
    assert n == 29 and got == pytest.approx(wilcoxon(a[keep] - b[keep]).pvalue)
    assert wilcoxon_p(a, a) == (1.0, 30)
    tests = paired_tests({"x": {"m": a}, "y": {"m": b}, "z": {"m": a + rng.normal(scale=1e-3, size=30)}})
    by = {(t["a"], t["b"]): t for t in tests}
    assert by[("x", "y")]["significant"] and by[("y", "z")]["significant"]
    assert by[("x", "y")]["p_holm"] >= by[("x", "y")]["p"]


def test_kid_on_fewer_samples_than_its_subset_size():
    """KID with the default subset size of 1000 on a benchmark-sized set of 12 (torchmetrics alone refuses)."""
    feature = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 16))
    kid = KID(feature=feature)
    gen = torch.Generator().manual_seed(0)
    kid.update(torch.rand(12, 3, 8, 8, generator=gen) * 2 - 1, real=True)
    kid.update(torch.rand(12, 3, 8, 8, generator=gen) * 2 - 1, real=False)
    mean, std = kid.compute()
    assert math.isfinite(float(mean)) and math.isfinite(float(std)) and kid.subset_size == 1000
