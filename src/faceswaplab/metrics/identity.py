"""Identity transfer: does the output look like the source?

* :class:`IdentitySimilarity` / :func:`identity_similarity`: cosine similarity between the embeddings of the
  output and of the source (a source image, or a reference embedding such as the identity's mean embedding).
* :class:`IdentityRetrieval` / :func:`identity_retrieval`: top-1 retrieval. The output's embedding is compared with
  a gallery holding one embedding per candidate identity (:func:`identity_gallery`: the normalised mean over that
  identity's images); a hit means the nearest gallery identity is the source.

Both take a :class:`~faceswaplab.metrics.embedders.FaceEmbedder` or a backend name
(:data:`~faceswaplab.metrics.embedders.DEFAULT_EMBEDDER` when omitted).
"""

from __future__ import annotations

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
                       embedder: FaceEmbedder | None = None, output_landmarks=None) -> torch.Tensor:
    """Top-1 retrieval hits per sample, (B,) float 0/1: is the gallery identity nearest to the output the source?

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
    nearest = gids[(eo @ g.T).argmax(1)]
    return (nearest == src).float()


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
    """Top-1 identity retrieval accuracy of the outputs against a gallery of identities; higher is better.

    Build with the gallery (``gallery (K, D), gallery_ids (K,)``, e.g. from :func:`identity_gallery`), or call
    :meth:`set_gallery` before updating. ``update(output, source_identity, output_landmarks=None)``.
    """

    higher_is_better = True
    plot_lower_bound, plot_upper_bound = 0.0, 1.0

    def __init__(self, embedder: FaceEmbedder | str | None = None, gallery=None, gallery_ids=None, **kwargs):
        super().__init__(**kwargs)
        self.embedder = build_embedder(embedder or DEFAULT_EMBEDDER) if not isinstance(embedder, FaceEmbedder) \
            else embedder
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
                                     output_landmarks))
