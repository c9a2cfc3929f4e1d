"""Is there a face at all? The share of outputs in which a face detector finds a face.

A swap that draws noise can still be embedded and measured at fixed landmarks; this metric says whether a
detector would call the output a face. Per sample 1 (found) or 0 (not found), never NaN.
"""

from __future__ import annotations

import torch

from faceswaplab.metrics.attributes import detect_landmarks
from faceswaplab.metrics.base import PerSampleMetric


def face_detected(images: torch.Tensor, size: int | None = None, backend=None) -> torch.Tensor:
    """1.0 where a face is detected in the crop (B, 3, H, W), else 0.0, (B,); crops are upscaled to `size` first."""
    import torch.nn.functional as F

    x = images.float().cpu()
    if size and x.shape[-1] < size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    lms = detect_landmarks(x, backend)
    return torch.isfinite(lms[:, :, 0]).all(1).double()


class FaceDetected(PerSampleMetric):
    """Face-detection rate of the outputs (dlib HOG by default, on crops upscaled to `size`); higher is better.

    ``update(output)``.
    """

    higher_is_better = True

    def __init__(self, size: int | None = 128, backend=None, **kwargs):
        super().__init__(**kwargs)
        self.size, self.backend = size, backend

    def update(self, output) -> None:
        self._add(face_detected(output, self.size, self.backend))
