"""Following faces through a video: a one-euro filter on each face's landmarks and a tracker that matches faces
from frame to frame (nearest centre), remembers where they were and can refit their landmarks in the next frame
without running the detector (:meth:`FaceTracker.follow`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

# A refit is accepted only when the face moved less than this many landmark radii (the landmarks' RMS distance
# from their centre, about a third of the face width) and changed its size by less than this factor since the
# previous frame: a face leaving, a cut or a fit that slid off the face breaks one of them.
MAX_SHIFT = 0.5
MAX_SCALE = 1.25
PATCH = 24  # side of the grey face patch compared between frames (px)


class OneEuroFilter:
    """One-euro low-pass filter of a (68, 2) landmark set, with speeds measured in face widths per second.

    The cutoff frequency rises with the speed of each landmark: still faces are smoothed strongly (no jitter),
    moving ones weakly (no lag). A jump larger than `reset` face widths (a cut, a re-detection) restarts it.
    """

    def __init__(self, min_cutoff: float = 1.5, beta: float = 0.5, d_cutoff: float = 1.0, reset: float = 0.25):
        self.min_cutoff, self.beta, self.d_cutoff, self.reset = min_cutoff, beta, d_cutoff, reset
        self.x: np.ndarray | None = None  # (68, 2) last output
        self.dx: np.ndarray | None = None  # (68, 2) smoothed speed, face widths per second

    @staticmethod
    def _alpha(cutoff, dt: float):
        return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        width = max(float(np.linalg.norm(x[16] - x[0])), 1.0)
        if self.x is None or np.abs(x - self.x).mean() > self.reset * width:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x
        dx = (x - self.x) / (dt * width)
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.linalg.norm(self.dx, axis=-1, keepdims=True)  # (68, 1)
        a = self._alpha(cutoff, dt)
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()

    def state(self) -> dict:
        return {"x": None if self.x is None else self.x.tolist(), "dx": None if self.dx is None else self.dx.tolist()}

    def load(self, state: dict) -> None:
        self.x = None if state["x"] is None else np.asarray(state["x"], np.float64)
        self.dx = None if state["dx"] is None else np.asarray(state["dx"], np.float64)


def centre_and_radius(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The landmarks' centroid (2,) and RMS distance from it: position and size that ignore rotation."""
    c = landmarks.mean(0)
    return c, max(float(np.sqrt(((landmarks - c) ** 2).sum(1).mean())), 1e-6)


def face_patch(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A small grey (PATCH, PATCH) float32 image of the face, framed by its landmarks (rotation and scale undone)."""
    import cv2

    from faceswaplab.faces.alignment import alignment_transform

    m = alignment_transform(landmarks, PATCH, margin=0.1)
    patch = cv2.warpAffine(frame, m, (PATCH, PATCH), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two patches in [-1, 1]; 0 when either is flat (a blank, a black frame)."""
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 1e-6 else 0.0


@dataclass
class Track:
    """One followed face: its smoothed landmarks (what is swapped), its filter, and for refitting the landmarks
    as found (before smoothing), the detector's box relative to them and the face's grey patch."""

    landmarks: np.ndarray  # (68, 2) smoothed, the last output
    filter: OneEuroFilter
    raw: np.ndarray | None = None  # (68, 2) as found
    box: np.ndarray | None = None  # (4,) detector box as (corner - centre) / radius of `raw`
    patch: np.ndarray | None = None  # (PATCH, PATCH) grey face of the last frame

    def fit_box(self) -> np.ndarray:
        """Where the detector would put this face's box, from its last landmarks: ``[x0, y0, x1, y1]``."""
        c, r = centre_and_radius(self.raw)
        return np.tile(c, 2) + self.box * r


class FaceTracker:
    """Follows the chosen faces from frame to frame (nearest centre) and smooths each one's landmarks.

    It also remembers where the faces were (:meth:`boxes`), so that the next frame can be searched near them,
    and can refit their landmarks directly (:meth:`follow`), which spares the detector on most frames.
    """

    def __init__(self, opts):
        """`opts`: ``enabled``, ``min_cutoff``, ``beta``, ``d_cutoff``, ``reset`` (:class:`~faceswaplab.swapping.options.SmoothingOptions`)."""
        self.opts = opts
        self.tracks: list[Track] = []

    def _filter(self) -> OneEuroFilter:
        o = self.opts
        return OneEuroFilter(o.min_cutoff, o.beta, o.d_cutoff, o.reset)

    def _smooth(self, filt: OneEuroFilter, lm: np.ndarray, dt: float) -> np.ndarray:
        return filt(lm, dt) if self.opts.enabled else np.asarray(lm, np.float64)

    def __call__(self, landmarks: list[np.ndarray], dt: float, boxes: list[np.ndarray] | None = None,
                 frame: np.ndarray | None = None) -> list[np.ndarray]:
        """The smoothed landmarks of this frame's detected faces (each matched to the nearest track).

        With the detector's `boxes` and the `frame`, the faces can be refitted in the next frame (:meth:`follow`).
        """
        out, tracks, free = [], [], list(self.tracks)
        for i, lm in enumerate(landmarks):
            lm = np.asarray(lm, np.float64)
            centre = lm.mean(0)
            width = max(float(np.linalg.norm(lm[16] - lm[0])), 1.0)
            dists = [np.linalg.norm(t.landmarks.mean(0) - centre) for t in free]
            if dists and min(dists) < 0.5 * width:
                filt = free.pop(int(np.argmin(dists))).filter
            else:
                filt = self._filter()
            track = Track(self._smooth(filt, lm, dt), filt)
            if boxes is not None and frame is not None:
                c, r = centre_and_radius(lm)
                track.raw, track.box = lm, (np.asarray(boxes[i], np.float64) - np.tile(c, 2)) / r
                track.patch = face_patch(frame, lm)
            tracks.append(track)
            out.append(track.landmarks)
        self.tracks = tracks  # faces not seen in this frame are forgotten
        return out

    def follow(self, frame: np.ndarray, fit: Callable[[np.ndarray, np.ndarray], np.ndarray], dt: float,
               min_similarity: float) -> list[np.ndarray] | None:
        """Refit every tracked face in this frame without detecting: the smoothed landmarks, or None.

        `fit(frame, boxes (N, 4)) -> (N, 68, 2)` places landmarks in boxes (the backend's shape predictor); each
        face's box is where the detector put it, carried along by its landmarks. A fit counts only when the face
        moved and grew little since the last frame (:data:`MAX_SHIFT`, :data:`MAX_SCALE`) and its grey patch
        still correlates with the last one by at least `min_similarity`; otherwise nothing changes and None
        asks for a detection.
        """
        if not self.tracks or any(t.raw is None for t in self.tracks):
            return None
        found = fit(frame, np.stack([t.fit_box() for t in self.tracks]))  # (N, 68, 2)
        patches = []
        for t, lm in zip(self.tracks, found):
            (c0, r0), (c1, r1) = centre_and_radius(t.raw), centre_and_radius(lm)
            if np.linalg.norm(c1 - c0) > MAX_SHIFT * r0 or not 1 / MAX_SCALE <= r1 / r0 <= MAX_SCALE:
                return None
            patches.append(face_patch(frame, lm))
            if similarity(patches[-1], t.patch) < min_similarity:
                return None
        for t, lm, patch in zip(self.tracks, found, patches):
            t.raw, t.patch = np.asarray(lm, np.float64), patch
            t.landmarks = self._smooth(t.filter, t.raw, dt)
        return [t.landmarks for t in self.tracks]

    def boxes(self) -> list[np.ndarray]:
        """``[x0, y0, x1, y1]`` of every tracked face's last landmarks."""
        return [np.concatenate([t.landmarks.min(0), t.landmarks.max(0)]) for t in self.tracks]

    def state(self) -> list[dict]:
        def plain(a):
            return None if a is None else a.tolist()

        return [{"landmarks": t.landmarks.tolist(), **t.filter.state(), "raw": plain(t.raw), "box": plain(t.box),
                 "patch": plain(t.patch)} for t in self.tracks]

    def load(self, state: list[dict]) -> None:
        def array(a):
            return None if a is None else np.asarray(a, np.float64)

        self.tracks = []
        for s in state:
            f = self._filter()
            f.load(s)
            patch = s.get("patch")
            self.tracks.append(Track(np.asarray(s["landmarks"], np.float64), f, array(s.get("raw")),
                                     array(s.get("box")), None if patch is None else np.asarray(patch, np.float32)))
