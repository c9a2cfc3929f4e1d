"""Identity metrics: real photos with dlib landmarks + the dlib embedder, retrieval, AUC, the synthetic embedder."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceswaplab.faces.alignment import align_face
from faceswaplab.faces.backends import DlibBackend
from faceswaplab.io import read_image
from faceswaplab.metrics import (
    DlibEmbedder, IdentityRetrieval, IdentitySimilarity, identity_gallery, identity_retrieval, identity_similarity,
    pair_auc, roc_auc,
)

PEOPLE = ("john_salley", "john_savage", "john_schneider")
PHOTOS = 3
SIZE = 128


@pytest.fixture(scope="module")
def real_faces(media):
    """Aligned 128 px crops (N, 3, H, W), their landmarks (N, 68, 2) and identity ids (N,): 3 people x 3 photos."""
    backend = DlibBackend("hog", upsample=1)
    crops, lms, ids = [], [], []
    for pid, person in enumerate(PEOPLE):
        for path in sorted((Path(media) / "photos" / person).iterdir())[:PHOTOS]:
            img = read_image(path)
            pad = img.shape[0] // 2  # tight 150 px crops: the detector needs context around the face
            big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            faces = backend.faces(big)
            assert faces, f"no face found in {path}"
            face = max(faces, key=lambda f: f.area)
            crop, _, crop_lm = align_face(big, face.landmarks, SIZE)
            crops.append(crop)
            lms.append(crop_lm)
            ids.append(pid)
    x = torch.as_tensor(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.as_tensor(np.stack(lms)), torch.as_tensor(ids)


@pytest.fixture(scope="module")
def dlib_embeddings(real_faces):
    x, lm, _ = real_faces
    return DlibEmbedder().embed(x, lm)


def test_dlib_embeddings_are_unit_and_separate_real_identities(real_faces, dlib_embeddings):
    _, _, ids = real_faces
    e = dlib_embeddings
    assert e.shape == (len(ids), 128)
    assert torch.allclose(e.norm(dim=1), torch.ones(len(e)), atol=1e-5)
    sim = e @ e.T
    same = (ids[:, None] == ids[None]) & ~torch.eye(len(ids), dtype=torch.bool)
    diff = ids[:, None] != ids[None]
    assert sim[same].mean() > sim[diff].mean() + 0.1
    assert pair_auc(e, ids) > 0.95


def test_identity_similarity_metric_matches_functional(real_faces, dlib_embeddings):
    x, lm, ids = real_faces
    emb = DlibEmbedder()
    # "output" = each person's first photo, "source" = their second / another person's second photo
    first, second, other = [0, 3, 6], [1, 4, 7], [4, 7, 1]
    same = identity_similarity(x[first], x[second], emb, lm[first], lm[second])
    assert torch.allclose(same, (dlib_embeddings[first] * dlib_embeddings[second]).sum(1), atol=1e-5)
    m = IdentitySimilarity(embedder=emb)
    m.update(x[first], dlib_embeddings[second], output_landmarks=lm[first])  # source as embeddings
    m.update(x[first], dlib_embeddings[other], lm[first])
    per = m.per_sample()
    assert per.shape == (6,) and (per[:3] > per[3:]).all()
    assert m.higher_is_better and not m.full_state_update


def test_identity_retrieval_top1(real_faces, dlib_embeddings):
    x, lm, ids = real_faces
    ref = [i for i in range(len(ids)) if i % PHOTOS != 0]  # gallery from photos 2 and 3 of each person
    query = [i for i in range(len(ids)) if i % PHOTOS == 0]
    gallery, gids = identity_gallery(dlib_embeddings[ref], ids[ref])
    assert gallery.shape == (3, 128) and gids.tolist() == [0, 1, 2]
    hits = identity_retrieval(dlib_embeddings[query], ids[query], gallery, gids)
    assert hits.tolist() == [1.0, 1.0, 1.0]
    wrong = identity_retrieval(dlib_embeddings[query], (ids[query] + 1) % 3, gallery, gids)
    assert wrong.tolist() == [0.0, 0.0, 0.0]
    m = IdentityRetrieval(embedder=DlibEmbedder(), gallery=gallery, gallery_ids=gids)
    m.update(x[query], ids[query], lm[query])
    assert float(m.compute()) == 1.0
    with pytest.raises(ValueError, match="not in the gallery"):
        identity_retrieval(dlib_embeddings[query], torch.tensor([0, 1, 9]), gallery, gids)


def test_roc_auc_equals_pair_counting():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200).round(1)  # rounded: ties must count one half
    labels = rng.uniform(size=200) < 0.3
    pos, neg = scores[labels], scores[~labels]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert roc_auc(scores, labels) == pytest.approx(brute)
    assert roc_auc([0.1, 0.2, 0.9, 0.8], [False, False, True, True]) == 1.0


@pytest.mark.slow
def test_synthetic_embedder_separates_synthetic_identities():
    """The default embedder reaches ROC AUC >= 0.95 on 8 identities x 20 random renders (trains once if needed)."""
    from faceswaplab.metrics import SyntheticEmbedder, synthetic_auc

    auc = synthetic_auc(SyntheticEmbedder(train=True), identities=8, renders=20, size=128, seed=0)
    assert auc >= 0.95


def test_warp_region_reproduces_the_crop_for_its_own_box():
    """The template-box resampler all embedders use: the whole crop's box with canonical landmarks is the identity."""
    from faceswaplab.faces import template as T
    from faceswaplab.metrics.embedders import warp_region

    size = 32
    img = torch.rand(1, 3, size, size) * 2 - 1
    m = T.template_to_crop(size)
    s = m[0, 0]
    lo, hi = (np.array([-0.5, size - 0.5]) - m[0, 2]) / s, (np.array([-0.5, size - 0.5]) - m[1, 2]) / s
    box = (lo[0], hi[0], lo[1], hi[1])
    out = warp_region(img, T.canonical_landmarks(size)[None], box, size)
    assert torch.allclose(out, img, atol=1e-4)


@pytest.mark.slow
def test_facenet_pipeline_runs_with_random_weights(real_faces):
    """Offline check of facenet's crop + forward path (random weights: the embeddings carry no identity)."""
    from faceswaplab.metrics import FacenetEmbedder

    x, lm, _ = real_faces
    emb = FacenetEmbedder(pretrained=None)
    e = emb.embed(x[:2], lm[:2])
    assert e.shape == (2, 512) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(emb.embed(x[:2], lm[:2]), e, atol=1e-6)
