"""The landmark-warp baseline: no learning, just geometry and blending.

For each (target, source) pair: triangulate the target's 68 landmarks plus forehead and crop-border points
(Delaunay), warp every source triangle onto the matching target triangle (piecewise affine), correct the warped
face's colours to the target's inside the target's face mask, and blend it in (Poisson ``seamless`` clone or a
``feather``-ed alpha blend). The result keeps the target's face outline and landmark positions (pose and
expression) and takes the source's facial texture. With ``keep_mouth`` (the default) the inside of the target's
inner lips is left out of the swap: an open target mouth keeps its own teeth and tongue instead of the source's
lips stretched over the gap. ``color="blur_ratio"`` is the classic landmark swap's local colour correction
(ratio of Gaussian blurs, kernel 0.6 times the distance between the eye centres).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from faceswaplab.faces import blending, masks, warp
from faceswaplab.faces.template import EYE_LEFT, EYE_RIGHT, MOUTH_INNER
from faceswaplab.images import to_image, to_tensor
from faceswaplab.methods.base import FaceSwapMethod

BLENDS = ("seamless", "feather")


def mouth_interior(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 mask of the polygon of the inner-lip points 60-67 (empty when the mouth is closed)."""
    out = np.zeros(size, np.float32)
    cv2.fillPoly(out, [np.round(landmarks[MOUTH_INNER]).astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
    return out


class LandmarkWarp(FaceSwapMethod):
    """Piecewise-affine landmark warp + colour correction + blending; works for any pair of faces.

    Args:
        color: colour correction inside the mask, one of :data:`faceswaplab.faces.blending.COLOR_MODES`.
        blend: ``"seamless"`` (``cv2.seamlessClone``, NORMAL_CLONE) or ``"feather"`` (alpha blend).
        feather: feather radius as a fraction of the target's face width (jaw end to jaw end), for
            ``blend="feather"`` and for the feathered fallback when OpenCV's clone fails.
        forehead: how far the face mask and the mesh reach above the brows (see :mod:`faceswaplab.faces.masks`).
        mask_dilate: grow (> 0) or shrink (< 0) the face mask by this fraction of the face width.
        drop_folds: leave out of the swap the mesh triangles that flip between source and target (the source
            would fold over itself there, duplicating features); the target shows through instead.
        keep_mouth: keep the target's mouth interior (inside the inner-lip points 60-67).
        detector: dlib detector (``"hog"`` or ``"cnn"``) used when ``swap`` is called without landmarks.
        upsample: dlib's upsampling steps for that detector.

    Reads from the batch (preview and validation only; nothing is trained): ``image_X``, ``landmarks_X`` and
    ``mask_X``. ``swap`` uses the landmarks it is given; without them it detects the 68 points with dlib's real
    HOG (or CNN) detector and shape predictor (:class:`faceswaplab.faces.backends.DlibBackend`, largest face) and
    raises ``ValueError`` when an image has no detectable face.
    """

    trainable = False
    identity_specific = False

    def __init__(self, color: str = "lab_meanstd", blend: str = "seamless", feather: float = 0.06,
                 forehead: float = masks.DEFAULT_FOREHEAD, mask_dilate: float = 0.0, drop_folds: bool = True,
                 keep_mouth: bool = True, detector: str = "hog", upsample: int = 1):
        super().__init__()
        if color not in blending.COLOR_MODES:
            raise ValueError(f"color must be one of {blending.COLOR_MODES}, got {color!r}")
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
        self.save_hyperparameters()
        self._backend = None  # dlib, created on first use

    # ---------------------------------------------------------------------------------------------- numpy

    def detect_landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """(68, 2) landmarks of the largest face in an (H, W, 3) uint8 RGB image with dlib, or None."""
        if self._backend is None:
            from faceswaplab.faces.backends import DlibBackend

            self._backend = DlibBackend(detector=self.hparams.detector, upsample=self.hparams.upsample)
        faces = self._backend.faces(image)
        if not faces:
            return None
        return max(faces, key=lambda f: f.area).landmarks.astype(np.float32)

    def swap_image(self, target: np.ndarray, source: np.ndarray, target_landmarks: np.ndarray,
                   source_landmarks: np.ndarray) -> np.ndarray:
        """Swap one pair of numpy images ((H, W, 3) uint8 RGB, any sizes) with their (68, 2) landmarks."""
        hp = self.hparams
        h, w = target.shape[:2]
        dst_pts = warp.mesh_points(target_landmarks, (h, w), forehead=hp.forehead)
        src_pts = warp.mesh_points(source_landmarks, source.shape[:2], forehead=hp.forehead)
        triangles = warp.triangulate(dst_pts, (h, w))
        if hp.drop_folds:
            # A triangle whose orientation differs between the faces folds the source over itself (typically
            # with large pose differences); leaving it out lets the target show there instead of a duplicate.
            triangles = triangles[warp.orientation(src_pts, triangles) == warp.orientation(dst_pts, triangles)]
        warped, coverage = warp.piecewise_affine_warp(source, src_pts, dst_pts, (h, w), triangles)

        lm = np.asarray(target_landmarks, np.float64)
        face_width = float(np.linalg.norm(lm[16] - lm[0]))
        mask = masks.face_hull_mask_np(lm, (h, w), forehead=hp.forehead, dilate=hp.mask_dilate * face_width)
        mask = mask * coverage
        if hp.keep_mouth:
            mask = mask * (1 - mouth_interior(lm, (h, w)))
        eye_distance = float(np.linalg.norm(lm[EYE_LEFT].mean(0) - lm[EYE_RIGHT].mean(0)))
        warped = blending.color_transfer(warped, target, mask, mode=hp.color, blur=0.6 * eye_distance)
        radius = max(1, round(hp.feather * face_width))
        if hp.blend == "seamless":
            return blending.seamless_clone(warped, target, mask, fallback_radius=radius)
        return blending.feather_blend(warped, target, mask, radius=radius)

    # ---------------------------------------------------------------------------------------------- torch

    @torch.no_grad()
    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        """Warp each source face onto its target's landmarks; (B, 3, H, W) in [-1, 1] in and out.

        `direction` is ignored (the method is not identity-specific); `source` is required. Missing landmarks
        are detected with dlib (see the class docstring).
        """
        if source is None:
            raise ValueError("LandmarkWarp needs a source image to take the identity from")
        if target.ndim != 4 or source.ndim != 4 or target.shape[0] != source.shape[0]:
            raise ValueError(f"expected (B, 3, H, W) target and source batches, got {tuple(target.shape)} "
                             f"and {tuple(source.shape)}")
        tgt_np, src_np = to_image(target), to_image(source)  # (B, H, W, 3) uint8
        tgt_lm = self._landmarks(tgt_np, target_landmarks, "target")
        src_lm = self._landmarks(src_np, source_landmarks, "source")
        out = np.stack([self.swap_image(t, s, tl, sl) for t, s, tl, sl in zip(tgt_np, src_np, tgt_lm, src_lm)])
        return to_tensor(out).to(device=target.device, dtype=target.dtype)

    def _landmarks(self, images: np.ndarray, landmarks: Tensor | None, role: str) -> np.ndarray:
        if landmarks is not None:
            lm = landmarks.detach().float().cpu().numpy() if isinstance(landmarks, Tensor) else np.asarray(landmarks)
            if lm.shape != (len(images), 68, 2):
                raise ValueError(f"{role}_landmarks must be ({len(images)}, 68, 2), got {lm.shape}")
            return lm.astype(np.float32)
        out = []
        for i, image in enumerate(images):
            lm = self.detect_landmarks(image)
            if lm is None:
                raise ValueError(f"no face found by dlib in {role} image {i} of the batch; pass {role}_landmarks")
            out.append(lm)
        return np.stack(out)
