"""Identity transfer: does the output look like the source?

* :class:`IdentitySimilarity` / :func:`identity_similarity`: cosine similarity between the embeddings of the
  output and of the source (a source image, or a reference embedding such as the identity's mean embedding).
* :class:`IdentityRetrieval` / :func:`identity_retrieval`: top-k retrieval. The output's embedding is compared with
  a gallery holding one embedding per candidate identity (:func:`identity_gallery`: the normalised mean over that
  identity's images); a hit means the source is among the k nearest gallery identities. Chance is k / K for a
  gallery of K identities, so the gallery should hold many identities besides the pair's two.
* :class:`IdentityMatch` / :func:`identity_match`: would a face verifier accept the output as the source? 1 where
  the cosine similarity reaches the verifier's threshold (:func:`equal_error_threshold` calibrates one on real
  images of known identities).

Both take a :class:`~faceswaplab.metrics.embedders.FaceEmbedder` or a backend name
(:data:`~faceswaplab.metrics.embedders.DEFAULT_EMBEDDER` when omitted).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from faceswaplab.metrics.base import PerSampleMetric
from faceswaplab.metrics.embedders import DEFAULT_EMBEDDER, FaceEmbedder, build_embedder


def _embed_or_pass(embedder: FaceEmbedder, x, landmarks) -> torch.Tensor:
    """Images (B, 3, H, W) are embedded; embeddings (B, D) are normalised and passed through."""
    x = torch.as_tensor(x)
    if x.ndim == 4:
        return embedder.embed(x, landmarks)
    if x.ndim == 2:
        return F.normalize(x.float().cpu(), dim=1)
    raise ValueError(f"expected images (B, 3, H, W) or embeddings (B, D), got shape {tuple(x.shape)}")


def identity_similarity(output, source, embedder: FaceEmbedder, output_landmarks=None,
                        source_landmarks=None) -> torch.Tensor:
    """Cosine similarity per sample, (B,): `output` images vs `source` images (or (B, D) source embeddings)."""
    eo = _embed_or_pass(embedder, output, output_landmarks)
    es = _embed_or_pass(embedder, source, source_landmarks)
    if eo.shape != es.shape:
        raise ValueError(f"output and source embeddings differ in shape: {tuple(eo.shape)} vs {tuple(es.shape)}")
    return (eo * es).sum(1)


def identity_gallery(embeddings: torch.Tensor, identities) -> tuple[torch.Tensor, torch.Tensor]:
    """One embedding per identity: the normalised mean of its (N, D) `embeddings`.

    Returns ``(gallery (K, D), gallery_ids (K,))`` with the identities sorted.
    """
    e = F.normalize(torch.as_tensor(embeddings).float(), dim=1)
    ids = torch.as_tensor(identities).long().reshape(-1)
    if len(ids) != len(e):
        raise ValueError(f"{len(e)} embeddings but {len(ids)} identities")
    uniq = torch.unique(ids)
    gallery = torch.stack([e[ids == i].mean(0) for i in uniq])
    return F.normalize(gallery, dim=1), uniq


def identity_retrieval(output, source_identity, gallery: torch.Tensor, gallery_ids,
                       embedder: FaceEmbedder | None = None, output_landmarks=None, k: int = 1) -> torch.Tensor:
    """Top-`k` retrieval hits per sample, (B,) float 0/1: is the source among the `k` gallery identities nearest to
    the output?

    `output` is images (then `embedder` is needed) or (B, D) embeddings; `source_identity` (B,) ids.
    """
    x = torch.as_tensor(output)
    if x.ndim == 4 and embedder is None:
        raise ValueError("identity_retrieval on images needs an embedder")
    eo = _embed_or_pass(embedder, x, output_landmarks)
    g = F.normalize(torch.as_tensor(gallery).float(), dim=1)
    gids = torch.as_tensor(gallery_ids).long()
    src = torch.as_tensor(source_identity).long().reshape(-1).cpu()
    missing = set(src.tolist()) - set(gids.tolist())
    if missing:
        raise ValueError(f"source identities {sorted(missing)} are not in the gallery")
    nearest = gids[(eo @ g.T).topk(min(k, len(gids)), dim=1).indices]  # (B, k)
    return (nearest == src[:, None]).any(1).float()


def identity_match(similarity, threshold: float) -> torch.Tensor:
    """1.0 where the cosine `similarity` (B,) reaches `threshold`, else 0.0."""
    return (torch.as_tensor(similarity).double() >= threshold).double()


def equal_error_threshold(embeddings: torch.Tensor, identities) -> tuple[float, float]:
    """``(threshold, equal error rate)`` of cosine verification on (N, D) `embeddings` of known `identities`: the
    similarity at which as many same-identity pairs fall below as different-identity pairs reach it."""
    e = F.normalize(torch.as_tensor(embeddings).float(), dim=1)
    ids = torch.as_tensor(identities).reshape(-1)
    sim = e @ e.T
    upper = torch.triu(torch.ones_like(sim, dtype=torch.bool), diagonal=1)
    same = (ids[:, None] == ids[None, :]) & upper
    genuine, impostor = sim[same].double(), sim[~(ids[:, None] == ids[None, :]) & upper].double()
    if not len(genuine) or not len(impostor):
        raise ValueError("equal_error_threshold needs two images of one identity and two identities")
    candidates = torch.cat([genuine, impostor]).unique()  # sorted
    # Rates at every candidate threshold by binary search in the sorted scores: O(n log n) memory-light.
    frr = torch.searchsorted(genuine.sort().values, candidates, side="left").double() / len(genuine)
    far = 1 - torch.searchsorted(impostor.sort().values, candidates, side="left").double() / len(impostor)
    i = int((frr - far).abs().argmin())
    return float(candidates[i]), float((frr[i] + far[i]) / 2)


class IdentitySimilarity(PerSampleMetric):
    """Mean cosine similarity between output and source embeddings; higher is better.

    ``update(output, source, output_landmarks=None, source_landmarks=None)``; `source` is images or embeddings.
    """

    higher_is_better = True
    plot_lower_bound, plot_upper_bound = -1.0, 1.0

    def __init__(self, embedder: FaceEmbedder | str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.embedder = build_embedder(embedder or DEFAULT_EMBEDDER) if not isinstance(embedder, FaceEmbedder) \
            else embedder

    def update(self, output, source, output_landmarks=None, source_landmarks=None) -> None:
        self._add(identity_similarity(output, source, self.embedder, output_landmarks, source_landmarks))


class IdentityRetrieval(PerSampleMetric):
    """Top-`k` identity retrieval accuracy of the outputs against a gallery of identities; higher is better.

    Build with the gallery (``gallery (K, D), gallery_ids (K,)``, e.g. from :func:`identity_gallery`), or call
    :meth:`set_gallery` before updating. ``update(output, source_identity, output_landmarks=None)``.
    """

    higher_is_better = True
    plot_lower_bound, plot_upper_bound = 0.0, 1.0

    def __init__(self, embedder: FaceEmbedder | str | None = None, gallery=None, gallery_ids=None, k: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        self.embedder = build_embedder(embedder or DEFAULT_EMBEDDER) if not isinstance(embedder, FaceEmbedder) \
            else embedder
        self.k = int(k)
        self.gallery = self.gallery_ids = None
        if gallery is not None:
            self.set_gallery(gallery, gallery_ids)

    def set_gallery(self, gallery, gallery_ids) -> None:
        """Set the candidate identities: (K, D) embeddings and their (K,) ids."""
        g = torch.as_tensor(gallery).float()
        ids = torch.as_tensor(gallery_ids).long().reshape(-1)
        if g.ndim != 2 or len(g) != len(ids):
            raise ValueError(f"gallery must be (K, D) with K ids, got {tuple(g.shape)} and {len(ids)} ids")
        self.gallery, self.gallery_ids = F.normalize(g, dim=1), ids

    def gallery_from_images(self, images, identities, landmarks=None) -> None:
        """Embed reference images (N, 3, H, W) of known `identities` (N,) and use their per-identity means."""
        self.set_gallery(*identity_gallery(self.embedder.embed(torch.as_tensor(images), landmarks), identities))

    def update(self, output, source_identity, output_landmarks=None) -> None:
        if self.gallery is None:
            raise RuntimeError("IdentityRetrieval needs a gallery: pass gallery= or call set_gallery() first")
        self._add(identity_retrieval(output, source_identity, self.gallery, self.gallery_ids, self.embedder,
                                     output_landmarks, self.k))

    def chance(self) -> float:
        """The hit rate of a random guess: k / gallery identities."""
        return min(self.k, len(self.gallery_ids)) / len(self.gallery_ids) if self.gallery_ids is not None else math.nan


class IdentityMatch(IdentitySimilarity):
    """Share of outputs a face verifier accepts as the source: cosine similarity to the source >= `threshold`
    (set it, or calibrate it with :func:`equal_error_threshold`, before updating); higher is better.

    ``update(output, source, output_landmarks=None, source_landmarks=None)``.
    """

    plot_lower_bound, plot_upper_bound = 0.0, 1.0

    def __init__(self, embedder: FaceEmbedder | str | None = None, threshold: float | None = None, **kwargs):
        super().__init__(embedder, **kwargs)
        self.threshold = threshold

    def update(self, output, source, output_landmarks=None, source_landmarks=None) -> None:
        if self.threshold is None:
            raise RuntimeError("IdentityMatch needs a threshold: pass threshold= or set .threshold first")
        sim = identity_similarity(output, source, self.embedder, output_landmarks, source_landmarks)
        self._add(identity_match(sim, self.threshold))
