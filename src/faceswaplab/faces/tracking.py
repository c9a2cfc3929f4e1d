"""Following faces through a video: a one-euro filter on each face's landmarks and a tracker that matches faces
from frame to frame (nearest centre) and remembers where they were."""

from __future__ import annotations

import math

import numpy as np


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


class FaceTracker:
    """Follows the chosen faces from frame to frame (nearest centre) and smooths each one's landmarks.

    It also remembers where the faces were (:meth:`boxes`), so that the next frame can be searched near them.
    """

    def __init__(self, opts):
        """`opts`: ``enabled``, ``min_cutoff``, ``beta``, ``d_cutoff``, ``reset`` (:class:`~faceswaplab.swapping.options.SmoothingOptions`)."""
        self.opts = opts
        self.tracks: list[tuple[np.ndarray, OneEuroFilter]] = []  # (last landmarks (68, 2), filter)

    def _filter(self) -> OneEuroFilter:
        o = self.opts
        return OneEuroFilter(o.min_cutoff, o.beta, o.d_cutoff, o.reset)

    def __call__(self, landmarks: list[np.ndarray], dt: float) -> list[np.ndarray]:
        out, tracks, free = [], [], list(self.tracks)
        for lm in landmarks:
            centre = lm.mean(0)
            width = max(float(np.linalg.norm(lm[16] - lm[0])), 1.0)
            dists = [np.linalg.norm(last.mean(0) - centre) for last, _ in free]
            if dists and min(dists) < 0.5 * width:
                _, filt = free.pop(int(np.argmin(dists)))
            else:
                filt = self._filter()
            smooth = filt(lm, dt) if self.opts.enabled else np.asarray(lm, np.float64)
            tracks.append((smooth, filt))
            out.append(smooth)
        self.tracks = tracks  # faces not seen in this frame are forgotten
        return out

    def boxes(self) -> list[np.ndarray]:
        """``[x0, y0, x1, y1]`` of every tracked face's last landmarks."""
        return [np.concatenate([lm.min(0), lm.max(0)]) for lm, _ in self.tracks]

    def state(self) -> list[dict]:
        return [{"landmarks": lm.tolist(), **f.state()} for lm, f in self.tracks]

    def load(self, state: list[dict]) -> None:
        self.tracks = []
        for s in state:
            f = self._filter()
            f.load(s)
            self.tracks.append((np.asarray(s["landmarks"], np.float64), f))
