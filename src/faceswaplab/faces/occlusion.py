"""Occlusion-aware face masks: the landmark hull less whatever covers the face (a hand, hair, glasses, a mug).

Three kinds (:data:`MASKS`), chosen by ``mask=`` in the data module, the swap command and so the DeepFakes loss:

* ``hull``: the convex hull of the landmarks and forehead (:func:`~faceswaplab.faces.masks.face_hull_mask`):
  anything in front of the face is inside it.
* ``segment``: the hull times the visible face predicted by :class:`~faceswaplab.faces.segmenter.VisibleFaceSegmenter`,
  a small U-Net trained on occluded synthetic renders (it ships with the package).
* ``parse``: the hull times the face classes (skin, brows, eyes, nose, mouth, lips) of a BiSeNet face parser
  (CelebAMask-HQ's 19 classes; :class:`FaceParser`). Its pretrained weights are not shipped: it reads
  ``79999_iter.pth`` from the torch hub cache (``$TORCH_HOME/hub/checkpoints``) and otherwise raises
  :class:`~faceswaplab.faces.backends.MissingWeightsError` naming that file.

Every kind is a ``(B, 3, H, W) -> (B, 1, H, W)`` visibility in [0, 1] (:func:`visibility`), multiplied into the
hull by :func:`occlusion_aware_mask`; ``hull`` is a visibility of ones, so it gives exactly the old masks.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F

from faceswaplab.faces.backends import MissingWeightsError

MASKS = ("hull", "segment", "parse")
PARSER_FILE = "79999_iter.pth"
# CelebAMask-HQ classes that are the face itself; glasses, hair, hat, ears, neck, clothes and background are not
FACE_CLASSES = ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "u_lip", "l_lip")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def check_mask_kind(kind: str, key: str = "mask") -> str:
    """`kind` if it is one of :data:`MASKS`, else a one-line ValueError naming `key`."""
    if kind not in MASKS:
        raise ValueError(f"{key} must be one of {', '.join(MASKS)}, got {kind!r}")
    return kind


class FaceParser:
    """BiSeNet face parsing -> ``(B, 1, H, W)`` probability of the face classes (:data:`FACE_CLASSES`).

    `weights_path` defaults to ``$TORCH_HOME/hub/checkpoints/79999_iter.pth``; crops are resized to `size` (the
    checkpoint's training resolution is 512) and ImageNet-normalised.
    """

    def __init__(self, weights_path=None, device: str | torch.device = "cpu", size: int = 512):
        from faceswaplab.nets.bisenet import CELEBAMASK_CLASSES, BiSeNet

        default = Path(torch.hub.get_dir()) / "checkpoints" / PARSER_FILE
        path = Path(weights_path) if weights_path is not None else default
        if not path.is_file():
            raise MissingWeightsError(
                f"face parser (BiSeNet, CelebAMask-HQ): weights file {path.name} not found at {path}. Put the "
                f"face-parsing checkpoint there (or set TORCH_HOME to a cache that has it), or use mask=segment")
        self.net = BiSeNet(len(CELEBAMASK_CLASSES))
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        self.device = torch.device(device)
        self.net.eval().to(self.device)
        self.size = int(size)
        self.face = torch.tensor([CELEBAMASK_CLASSES.index(c) for c in FACE_CLASSES])
        self.mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        H, W = images.shape[-2:]
        x = (images.to(self.device, torch.float32) + 1) * 0.5
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (x - self.mean.to(x)) / self.std.to(x)
        p = self.net(x).softmax(1)[:, self.face.to(x.device)].sum(1, keepdim=True)
        return F.interpolate(p, size=(H, W), mode="bilinear", align_corners=False).to(images.device)


@functools.lru_cache(maxsize=4)
def visibility_model(kind: str, device: str = "cpu"):
    """The (cached) model of mask `kind`: None for ``hull``, else a callable ``(B, 3, H, W) -> (B, 1, H, W)``."""
    check_mask_kind(kind)
    if kind == "hull":
        return None
    if kind == "segment":
        from faceswaplab.faces.segmenter import VisibleFaceSegmenter

        return VisibleFaceSegmenter(device=device)
    return FaceParser(device=device)


def visibility(kind: str, images: torch.Tensor) -> torch.Tensor:
    """Which pixels of aligned crops (B, 3, H, W) in [-1, 1] show the face, (B, 1, H, W) in [0, 1], by `kind`."""
    model = visibility_model(kind, str(images.device))
    if model is None:
        return images.new_ones((images.shape[0], 1, *images.shape[-2:]))
    return model(images)


def occlusion_aware_mask(kind: str, images: torch.Tensor, hull: torch.Tensor) -> torch.Tensor:
    """The face `hull` (B, 1, H, W) less what covers the face in `images`, as judged by mask `kind` (a pixel is
    taken out when the model gives it less than even odds of showing the face: a soft probability would leave
    part of the occluder in the masked losses)."""
    return hull if kind == "hull" else hull * (visibility(kind, images) > 0.5).to(hull.dtype)


def mask_iou(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Intersection over union of two masks (B, 1, H, W) thresholded at `threshold`, per image (B,)."""
    p, t = pred > threshold, target > threshold
    inter = (p & t).flatten(1).sum(1).float()
    union = (p | t).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
