"""The benchmark's metrics: torchmetrics ``Metric`` classes with functional twins that give per-sample values.

Inputs follow the package conventions: aligned crops (B, 3, H, W) in [-1, 1], landmarks (B, 68, 2) in crop pixels.
Per-sample metrics (:class:`PerSampleMetric`) keep every value, NaN for samples they could not evaluate
(``per_sample()``, ``num_failed()``), so the runner can bootstrap confidence intervals.

==========================  ============================  =====================================================
name (:func:`build_metrics`) class                         measures
==========================  ============================  =====================================================
``identity_similarity``     :class:`IdentitySimilarity`   cosine similarity of output and source embeddings
``identity_retrieval``      :class:`IdentityRetrieval`    top-1: the output's nearest gallery identity is the source
``identity_retrieval_top5`` :class:`IdentityRetrieval`    top-5: the source is among the 5 nearest identities
``identity_match``          :class:`IdentityMatch`        a verifier accepts the output as the source (threshold)
``face_detected``           :class:`FaceDetected`         a face detector finds a face in the output
``landmark_nme``            :class:`LandmarkNME`          landmark error vs target, / inter-ocular distance
``pose_error``              :class:`HeadPoseError`        yaw/pitch/roll error vs target (degrees)
``expression_error``        :class:`ExpressionError`      brow/eye/mouth configuration error vs target
``pose_error_source``       :class:`HeadPoseError`        the same vs the source (copying the source's pose)
``expression_error_source`` :class:`ExpressionError`      the same vs the source (copying its expression)
``lpips``                   :class:`LPIPS`                perceptual distance (reconstruction)
``background_lpips``        :class:`BackgroundLPIPS`      perceptual distance outside the face (swap vs target)
``ssim`` / ``psnr``         :class:`SSIM` / :class:`PSNR`  reconstruction fidelity
``fid`` / ``kid``           :class:`FID` / :class:`KID`    realism of the output set vs the target set
``identity_fd``             :class:`IdentityFeatureFD`    Fréchet distance on identity features (offline stand-in)
==========================  ============================  =====================================================

Offline: a metric whose weights or package are missing raises a :class:`MetricUnavailable` subclass naming the
file or package; :func:`build_metrics` collects those as reasons and builds everything else.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable

import torch
from torchmetrics import Metric

from faceswaplab.metrics.attributes import (
    ExpressionError, HeadPoseError, LandmarkNME, detect_landmarks, expression_error, expression_residuals, head_pose,
    interocular_distance, landmark_nme, pose_error, predict_landmarks, template_face_box,
)
from faceswaplab.metrics.base import PerSampleMetric
from faceswaplab.metrics.embedders import (
    DEFAULT_EMBEDDER, EMBEDDERS, ArcfaceEmbedder, DlibEmbedder, FaceEmbedder, FacenetEmbedder, SyntheticEmbedder,
    build_embedder, pair_auc, roc_auc, train_synthetic_embedder,
)
from faceswaplab.metrics.separation import synthetic_auc
from faceswaplab.metrics.identity import (
    IdentityMatch, IdentityRetrieval, IdentitySimilarity, equal_error_threshold, identity_gallery, identity_match,
    identity_retrieval, identity_similarity,
)
from faceswaplab.metrics.perceptual import (
    LPIPS, PSNR, SSIM, BackgroundLPIPS, background_lpips, lpips_distance, lpips_model, peak_snr,
    structural_similarity,
)
from faceswaplab.metrics.presence import FaceDetected, face_detected
from faceswaplab.metrics.realism import FID, KID, IdentityFeatureFD, frechet_distance, kernel_distance
from faceswaplab.metrics.weights import DependencyUnavailable, MetricUnavailable, WeightsUnavailable

METRICS = {
    "identity_similarity": IdentitySimilarity,
    "identity_retrieval": IdentityRetrieval,
    "identity_retrieval_top5": functools.partial(IdentityRetrieval, k=5),
    "identity_match": IdentityMatch,
    "face_detected": FaceDetected,
    "landmark_nme": LandmarkNME,
    "pose_error": HeadPoseError,
    "expression_error": ExpressionError,
    "pose_error_source": HeadPoseError,
    "expression_error_source": ExpressionError,
    "lpips": LPIPS,
    "background_lpips": BackgroundLPIPS,
    "ssim": SSIM,
    "psnr": PSNR,
    "fid": FID,
    "kid": KID,
    "identity_fd": IdentityFeatureFD,
}
_IDENTITY = ("identity_similarity", "identity_retrieval", "identity_retrieval_top5", "identity_match", "identity_fd")
_SIZED = ("pose_error", "expression_error", "pose_error_source", "expression_error_source")


def build_metrics(names: Iterable[str] | None = None, device: str | torch.device = "cpu",
                  options: dict[str, dict[str, Any]] | None = None, embedder: str | FaceEmbedder | None = None,
                  image_size: int | None = None) -> tuple[dict[str, Metric], dict[str, str]]:
    """Build the metrics `names` (default: all of :data:`METRICS`) on `device`.

    `options` maps a metric name to keyword arguments of its class (e.g. ``{"kid": {"subset_size": 50}}``);
    `image_size` (the crop size) is passed to the metrics that need it (pose and expression). The identity metrics
    share one embedder (`embedder`: a backend name or an instance; default :data:`DEFAULT_EMBEDDER`).
    Returns ``(metrics: dict[name, Metric], unavailable: dict[name, reason])``: a metric that cannot run here
    (missing weights or package) is reported, not raised.

    Each metric is a torchmetrics ``Metric`` over (B, 3, H, W) crops in [-1, 1]: ``update`` per batch, then
    ``compute`` (the mean) or ``per_sample()``:

    >>> import torch
    >>> metrics, unavailable = build_metrics(["ssim", "psnr"])
    >>> sorted(metrics), unavailable
    (['psnr', 'ssim'], {})
    >>> target = torch.linspace(-1, 1, 2 * 3 * 16 * 16).reshape(2, 3, 16, 16)
    >>> for metric in metrics.values():
    ...     metric.update(target + 0.02, target)  # output, reference
    >>> round(float(metrics["psnr"].compute()), 2), metrics["psnr"].per_sample().shape
    (40.0, torch.Size([2]))
    >>> bool(metrics["ssim"].compute() > 0.99)
    True
    """
    names = list(METRICS) if names is None else list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}: expected names from {sorted(METRICS)}")
    options = options or {}
    metrics, unavailable = {}, {}
    shared = None
    if any(n in _IDENTITY for n in names):
        try:
            shared = embedder if isinstance(embedder, FaceEmbedder) else build_embedder(embedder or DEFAULT_EMBEDDER)
        except MetricUnavailable as e:
            for n in names:
                if n in _IDENTITY:
                    unavailable[n] = e.reason
    for name in names:
        if name in unavailable:
            continue
        kwargs = dict(options.get(name, {}))
        if name in _IDENTITY:
            kwargs.setdefault("embedder", shared)
        if name in _SIZED:
            if image_size is None and "image_size" not in kwargs:
                raise ValueError(f"metric {name!r} needs image_size (the crop size)")
            kwargs.setdefault("image_size", image_size)
        try:
            metrics[name] = METRICS[name](**kwargs).to(device)
        except MetricUnavailable as e:
            unavailable[name] = e.reason
    return metrics, unavailable


__all__ = [
    "BackgroundLPIPS", "DEFAULT_EMBEDDER", "DependencyUnavailable", "DlibEmbedder", "EMBEDDERS", "ExpressionError",
    "FID", "FaceDetected", "FaceEmbedder", "FacenetEmbedder", "HeadPoseError", "IdentityFeatureFD", "IdentityMatch",
    "IdentityRetrieval", "IdentitySimilarity", "KID",
    "LPIPS", "LandmarkNME", "METRICS", "MetricUnavailable", "PSNR", "PerSampleMetric", "SSIM", "ArcfaceEmbedder",
    "SyntheticEmbedder", "WeightsUnavailable", "background_lpips", "build_embedder", "build_metrics",
    "detect_landmarks", "equal_error_threshold", "expression_error", "face_detected", "frechet_distance",
    "head_pose", "identity_gallery", "identity_match", "identity_retrieval", "identity_similarity", "interocular_distance", "kernel_distance", "landmark_nme",
    "lpips_distance", "lpips_model", "expression_residuals", "pair_auc", "peak_snr", "pose_error", "roc_auc",
    "predict_landmarks", "structural_similarity", "synthetic_auc", "template_face_box", "train_synthetic_embedder",
]
