"""Attribute preservation (FaceForensics++-protocol analogues): did the swap keep the target's landmarks, head pose
and expression?

* **Landmark NME**: mean point-to-point distance of the output's 68 landmarks to the target's, divided by the
  target's inter-ocular distance (outer eye corners 36 and 45).
* **Head pose error**: absolute difference of yaw, pitch and roll (degrees) estimated from 68 landmarks by
  :func:`head_pose` (``cv2.solvePnP`` on :data:`faceswaplab.faces.template.MEAN_FACE_3D`). The angles follow the
  synthetic renderer's convention: positive yaw turns the nose to the image right, positive pitch lifts the chin,
  positive roll tilts the head clockwise.
* **Expression error**: the configuration of the brows, eyes and mouth after removing pose and face shape. The
  posed 3D mean face is fitted to each landmark set (as for the pose); its residuals (:func:`expression_residuals`:
  landmarks minus the projected template, turned back by the roll, in inter-ocular units) hold shape and
  expression. When the neutral landmarks of each face's identity are given (any pose), their residuals are
  subtracted, so that only the expression's displacement remains; otherwise the identities' shape differences
  count too. The error is the mean distance between the two faces' residuals over the brow, eye and mouth points
  (in inter-ocular units, so it reads like an NME). On the synthetic faces it is ~0.005 for the same expression at
  poses 20-30 degrees apart, and 0.015-0.05 for a full blink, smile, brow raise or open mouth.

Landmarks of output images come from the caller (e.g. the synthetic ground truth, or any landmark model) or from
:func:`detect_landmarks` (a :class:`~faceswaplab.faces.backends.FaceBackend`, dlib by default); a face that is not
detected gives NaN landmarks, which the metrics count as failures (:meth:`PerSampleMetric.num_failed`) and skip.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from faceswaplab.faces import template as T
from faceswaplab.metrics.base import PerSampleMetric

OUTER_EYE_CORNERS = (36, 45)
EXPRESSION_POINTS = T.BROWS + T.EYES + T.MOUTH
DEFAULT_FOCAL = 10.0


def _as_tensor(x) -> torch.Tensor:
    return x.detach().double().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, np.float64))


# ------------------------------------------------------------------------------------------------ functional


def interocular_distance(landmarks) -> torch.Tensor:
    """Distance between the outer eye corners (36, 45) of (B, 68, 2) landmarks, (B,)."""
    lm = _as_tensor(landmarks)
    return (lm[:, OUTER_EYE_CORNERS[0]] - lm[:, OUTER_EYE_CORNERS[1]]).norm(dim=-1)


def landmark_nme(pred, target) -> torch.Tensor:
    """Normalised mean error per sample, (B,): mean over the 68 points of ``|pred - target|`` divided by the
    target's inter-ocular distance. NaN where `pred` is NaN (face not found).

    Landmarks (B, 68, 2), numpy or torch. Every point 1.5 px off gives 1.5 / inter-ocular distance:

    >>> import torch
    >>> from faceswaplab.faces.template import canonical_landmarks
    >>> target = torch.as_tensor(canonical_landmarks(64))[None]  # (1, 68, 2)
    >>> nme = landmark_nme(target + torch.tensor([1.5, 0.0]), target)
    >>> nme.shape, bool(torch.allclose(nme, 1.5 / interocular_distance(target)))
    (torch.Size([1]), True)
    >>> landmark_nme(target, target).tolist()
    [0.0]
    """
    p, t = _as_tensor(pred), _as_tensor(target)
    if p.shape != t.shape or p.shape[-2:] != (68, 2):
        raise ValueError(f"landmarks must both be (B, 68, 2), got {tuple(p.shape)} and {tuple(t.shape)}")
    return (p - t).norm(dim=-1).mean(-1) / interocular_distance(t)


_FLIP_Z = np.diag([1.0, 1.0, -1.0])  # template frame (z to the camera) <-> OpenCV camera frame (z away)
_TEMPLATE_IOD = float(np.linalg.norm(T.MEAN_FACE_3D[OUTER_EYE_CORNERS[0]] - T.MEAN_FACE_3D[OUTER_EYE_CORNERS[1]]))


def _camera(image_size, focal: float) -> np.ndarray:
    h, w = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    f = focal * max(h, w)
    return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def _fit_template(lm: np.ndarray, k: np.ndarray):
    """Fit the 3D mean face to (68, 2) landmarks: (rvec, tvec) in the OpenCV camera frame, or None."""
    obj = T.MEAN_FACE_3D @ _FLIP_Z
    ok, rvec, tvec = cv2.solvePnP(obj, lm, k, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return None
    ok, rvec, tvec = cv2.solvePnP(obj, lm, k, None, rvec, tvec, True, flags=cv2.SOLVEPNP_ITERATIVE)
    return (rvec, tvec) if ok and tvec[2, 0] > 0 else None


def head_pose(landmarks, image_size: int | tuple[int, int], focal: float = DEFAULT_FOCAL) -> torch.Tensor:
    """Yaw, pitch, roll in degrees, (B, 3), from (B, 68, 2) pixel landmarks of `image_size` (H, W) images.

    A pinhole camera with focal length ``focal * max(H, W)`` looks at the image centre; the long default focal
    (a nearly orthographic view, like a face filmed from a few metres) suits aligned crops and the orthographic
    synthetic renders. Fits the 3D mean face with EPnP, refined by Levenberg-Marquardt. NaN rows for NaN input.
    """
    lms = _as_tensor(landmarks).numpy()
    k = _camera(image_size, focal)
    out = np.full((len(lms), 3), np.nan)
    for i, lm in enumerate(lms):
        fit = _fit_template(lm, k) if np.isfinite(lm).all() else None
        if fit is None:
            continue
        r = _FLIP_Z @ cv2.Rodrigues(fit[0])[0] @ _FLIP_Z  # template frame: R = Rz(roll) Rx(pitch) Ry(yaw)
        out[i] = np.degrees([np.arctan2(-r[2, 0], r[2, 2]), np.arcsin(np.clip(r[2, 1], -1, 1)),
                             np.arctan2(-r[0, 1], r[1, 1])])
    return torch.as_tensor(out)


def pose_error(pred_pose, target_pose) -> torch.Tensor:
    """Absolute yaw, pitch, roll differences in degrees, (B, 3) (wrapped to [0, 180])."""
    d = (_as_tensor(pred_pose) - _as_tensor(target_pose)).abs() % 360.0
    return torch.minimum(d, 360.0 - d)


def expression_residuals(landmarks, image_size: int | tuple[int, int], focal: float = DEFAULT_FOCAL) -> torch.Tensor:
    """What the posed 3D mean face does not explain: (B, 68, 2) residuals of the landmarks from the fitted, projected
    template, turned back by the head's roll and divided by the projected inter-ocular distance of the template.

    They hold face shape and expression without pose (up to the foreshortening of yaw and pitch). NaN rows for NaN
    input or a failed fit.
    """
    lms = _as_tensor(landmarks).numpy()
    k = _camera(image_size, focal)
    obj = T.MEAN_FACE_3D @ _FLIP_Z
    out = np.full(lms.shape, np.nan)
    for i, lm in enumerate(lms):
        fit = _fit_template(lm, k) if np.isfinite(lm).all() else None
        if fit is None:
            continue
        rvec, tvec = fit
        proj = cv2.projectPoints(obj, rvec, tvec, k, None)[0].reshape(-1, 2)
        r = cv2.Rodrigues(rvec)[0]
        roll = np.arctan2(r[1, 0], r[0, 0])
        c, s = np.cos(roll), np.sin(roll)
        unroll = np.array([[c, s], [-s, c]])  # rotation by -roll
        scale = k[0, 0] / tvec[2, 0] * _TEMPLATE_IOD  # pixels per inter-ocular distance
        out[i] = (lm - proj) @ unroll.T / scale
    return torch.as_tensor(out)


def expression_error(pred, target, image_size: int | tuple[int, int], pred_neutral=None, target_neutral=None,
                     focal: float = DEFAULT_FOCAL) -> torch.Tensor:
    """Expression distance per sample, (B,): mean distance between the :func:`expression_residuals` of the brow,
    eye and mouth points, with each identity's neutral residuals subtracted when given (any pose)."""
    p, t = expression_residuals(pred, image_size, focal), expression_residuals(target, image_size, focal)
    if (pred_neutral is None) != (target_neutral is None):
        raise ValueError("give the neutral landmarks of both faces or of neither")
    if pred_neutral is not None:
        p = p - expression_residuals(pred_neutral, image_size, focal)
        t = t - expression_residuals(target_neutral, image_size, focal)
    return (p - t)[:, EXPRESSION_POINTS].norm(dim=-1).mean(-1)


def detect_landmarks(images: torch.Tensor, backend=None, pad: float = 0.5) -> torch.Tensor:
    """68 landmarks of the face in each image (B, 3, H, W) in [-1, 1] with a :class:`FaceBackend` (dlib HOG by
    default), (B, 68, 2) float64 crop pixels; NaN rows where no face is found.

    Tight crops are padded by `pad` times their size on every side (border replicated) first, because detectors
    need context around the face. With several faces, the one nearest the crop centre is kept.
    """
    from faceswaplab.metrics.embedders import to_uint8

    backend = backend or _default_backend()
    imgs = to_uint8(images)
    out = np.full((len(imgs), 68, 2), np.nan)
    for i, img in enumerate(imgs):
        h, w = img.shape[:2]
        py, px = int(round(pad * h)), int(round(pad * w))
        big = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_REPLICATE)
        faces = backend.faces(big)
        if not faces:
            continue
        centre = np.array([px + (w - 1) / 2, py + (h - 1) / 2])
        best = min(faces, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))
        out[i] = best.landmarks - [px, py]
    return torch.as_tensor(out)


def template_face_box(size: int, margin: float | None = None) -> np.ndarray:
    """``[x0, y0, x1, y1]``: where dlib's HOG detector boxes the face of an aligned crop of `size` px.

    The median detection box on aligned synthetic renders, relative to the template's landmark box
    (``experiments/scripts/template_face_box.py``); the crop is aligned, so the box is known without detecting.
    """
    from faceswaplab.faces.template import DEFAULT_MARGIN, canonical_landmarks

    lm = canonical_landmarks(size, DEFAULT_MARGIN if margin is None else margin)
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    w, h = x1 - x0, y1 - y0
    return np.array([x0 - 0.080 * w, y0 - 0.116 * h, x1 + 0.031 * w, y1 + 0.029 * h])


def predict_landmarks(images: torch.Tensor, size: int | None = None, margin: float | None = None) -> torch.Tensor:
    """68 landmarks of every aligned crop (B, 3, H, W) in [-1, 1]: dlib's shape predictor run inside the
    :func:`template_face_box`, with no detection step, so every output gets landmarks (a crop that holds no face
    gets a face-shaped guess far from the target's, which the attribute metrics then score as such).

    Crops are upscaled to `size` px first when smaller (the predictor needs detail); (B, 68, 2) float64 pixels of
    the crops as given.
    """
    import torch.nn.functional as F

    from faceswaplab.metrics.embedders import to_uint8

    h = images.shape[-1]
    big = max(h, int(size or h))
    x = images.float().cpu()
    if big != h:
        x = F.interpolate(x, size=(big, big), mode="bicubic", align_corners=False).clamp(-1, 1)
    box = template_face_box(big, margin)[None]
    predictor = _landmark_predictor()
    lms = np.stack([predictor(img, box)[0] for img in to_uint8(x)])
    return torch.as_tensor((lms + 0.5) * (h / big) - 0.5)


_PREDICTOR = None


def _landmark_predictor():
    global _PREDICTOR
    if _PREDICTOR is None:
        from faceswaplab.faces.backends import DlibLandmarks

        _PREDICTOR = DlibLandmarks()
    return _PREDICTOR


_BACKEND = None


def _default_backend():
    global _BACKEND
    if _BACKEND is None:
        from faceswaplab.faces.backends import DlibBackend

        _BACKEND = DlibBackend("hog", upsample=1)
    return _BACKEND


# ---------------------------------------------------------------------------------------------------- metrics


class _LandmarkInput:
    """Mixin: take output landmarks from the caller or detect them in the output images."""

    def _output_landmarks(self, output_landmarks, output_images):
        if output_landmarks is not None:
            return _as_tensor(output_landmarks)
        if output_images is None:
            raise ValueError("give output_landmarks or output_images (landmarks are then detected)")
        return detect_landmarks(output_images, self.backend, self.pad)


class LandmarkNME(_LandmarkInput, PerSampleMetric):
    """Mean landmark NME (inter-ocular) between outputs and targets; lower is better.

    ``update(target_landmarks, output_landmarks=None, output_images=None)``: without `output_landmarks` they are
    detected in `output_images` with `backend` (dlib HOG by default); missed faces count as failures (NaN).
    """

    higher_is_better = False

    def __init__(self, backend=None, pad: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.backend, self.pad = backend, pad

    def update(self, target_landmarks, output_landmarks=None, output_images=None) -> None:
        self._add(landmark_nme(self._output_landmarks(output_landmarks, output_images), target_landmarks))


class HeadPoseError(_LandmarkInput, PerSampleMetric):
    """Mean absolute head-pose error in degrees (the average of yaw, pitch and roll errors); lower is better.

    ``update(target, output_landmarks=None, output_images=None)``: `target` is the target's landmarks (B, 68, 2)
    (its pose is estimated the same way) or its known pose (B, 3) degrees. `per_angle()` gives (N, 3) errors.
    """

    higher_is_better = False

    def __init__(self, image_size: int | tuple[int, int], focal: float = DEFAULT_FOCAL, backend=None,
                 pad: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.focal, self.backend, self.pad = image_size, focal, backend, pad
        self.add_state("angles", default=[], dist_reduce_fx="cat")

    def update(self, target, output_landmarks=None, output_images=None) -> None:
        target = _as_tensor(target)
        t_pose = target if target.ndim == 2 else head_pose(target, self.image_size, self.focal)
        o_pose = head_pose(self._output_landmarks(output_landmarks, output_images), self.image_size, self.focal)
        err = pose_error(o_pose, t_pose)  # (B, 3)
        self.angles.append(err.to(self.device))
        self._add(err.mean(1))

    def per_angle(self) -> torch.Tensor:
        """(N, 3) absolute yaw, pitch, roll errors in degrees."""
        from torchmetrics.utilities import dim_zero_cat

        a = self.angles
        return a if isinstance(a, torch.Tensor) else (dim_zero_cat(a) if len(a) else torch.zeros(0, 3).double())


class ExpressionError(_LandmarkInput, PerSampleMetric):
    """Mean expression error (see the module docstring); lower is better.

    ``update(target_landmarks, output_landmarks=None, output_images=None, output_neutral=None,
    target_neutral=None)``: the neutral landmarks are those of the output's identity (the source) and of the
    target's identity; give both or neither.
    """

    higher_is_better = False

    def __init__(self, image_size: int | tuple[int, int], focal: float = DEFAULT_FOCAL, backend=None,
                 pad: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.focal, self.backend, self.pad = image_size, focal, backend, pad

    def update(self, target_landmarks, output_landmarks=None, output_images=None, output_neutral=None,
               target_neutral=None) -> None:
        pred = self._output_landmarks(output_landmarks, output_images)
        self._add(expression_error(pred, target_landmarks, self.image_size, output_neutral, target_neutral,
                                   self.focal))
