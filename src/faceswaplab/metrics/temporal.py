"""Temporal metrics of a face clip: how much its landmarks jitter, its face colour flickers and its identity drifts.

Each is a property of one clip; the video protocol (:mod:`faceswaplab.benchmarking.video`) reads a swapped clip's
values against the target clip's own, since real faces move and lighting changes too.

* :func:`landmark_jitter`: mean norm of the landmarks' second difference over time (acceleration), per point, in
  inter-ocular distances. Smooth motion has a small second difference, frame-to-frame noise a large one.
* :func:`colour_flicker`: mean CIELAB distance between the median skin colours of consecutive frames.
* :func:`identity_stability`: mean cosine similarity of each frame's identity embedding to the clip's mean one.

Frames without landmarks are NaN; a difference that needs one of them is left out, and how many are left out is
returned beside each value.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from faceswaplab.metrics.skin_tone import skin_mask

_EYES = (slice(36, 42), slice(42, 48))


def _interocular(landmarks: np.ndarray) -> np.ndarray:
    """(T,) distances between the eye centres of (T, 68, 2) landmarks."""
    return np.linalg.norm(landmarks[:, _EYES[0]].mean(1) - landmarks[:, _EYES[1]].mean(1), axis=-1)


def landmark_jitter(landmarks) -> tuple[float, int]:
    """``(jitter, used)``: the mean per-point norm of ``l[t+1] - 2 l[t] + l[t-1]`` over the `used` frames t whose
    neighbours and themselves have landmarks, divided by the inter-ocular distance at t.

    >>> t = np.arange(10.0)[:, None, None]
    >>> steady = np.random.default_rng(0).normal(size=(68, 2)) * 20 + t * [3.0, 1.0]  # constant velocity
    >>> landmark_jitter(steady)[0] < 1e-9
    True
    """
    lm = np.asarray(landmarks, np.float64)
    if len(lm) < 3:
        return float("nan"), 0
    accel = lm[2:] - 2 * lm[1:-1] + lm[:-2]  # (T-2, 68, 2)
    per_frame = np.linalg.norm(accel, axis=-1).mean(-1) / _interocular(lm[1:-1])
    ok = np.isfinite(per_frame)
    return (float(per_frame[ok].mean()) if ok.any() else float("nan")), int(ok.sum())


def skin_colours(frames, landmarks) -> np.ndarray:
    """(T, 3) median CIELAB colour of each frame's skin pixels (NaN rows where there are none); frames (T, H, W, 3)
    uint8 RGB, landmarks (T, 68, 2) pixels."""
    out = np.full((len(frames), 3), np.nan)
    for i, (frame, lm) in enumerate(zip(frames, np.asarray(landmarks, np.float64))):
        m = skin_mask(lm, frame.shape[:2])
        if m.any():
            lab = cv2.cvtColor(np.ascontiguousarray(frame).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
            out[i] = np.median(lab[m], axis=0)
    return out


def colour_flicker(frames, landmarks) -> tuple[float, int]:
    """``(flicker, used)``: the mean CIELAB distance (Delta E 1976) between consecutive frames' median skin colours
    over the `used` consecutive pairs that both have one."""
    lab = skin_colours(frames, landmarks)
    step = np.linalg.norm(lab[1:] - lab[:-1], axis=-1)
    ok = np.isfinite(step)
    return (float(step[ok].mean()) if ok.any() else float("nan")), int(ok.sum())


def identity_stability(embeddings) -> tuple[float, int]:
    """``(stability, used)``: the mean cosine similarity of each frame's embedding (T, D) to the mean direction of all
    of them, over the `used` frames with an embedding (rows of NaN have none); 1: the same identity throughout."""
    e = torch.as_tensor(embeddings, dtype=torch.float64)
    e = e[torch.isfinite(e).all(1)]
    if len(e) == 0:
        return float("nan"), 0
    e = torch.nn.functional.normalize(e, dim=1)
    centre = torch.nn.functional.normalize(e.mean(0), dim=0)
    return float((e @ centre).mean()), len(e)
