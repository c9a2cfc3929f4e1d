"""Losses through a pretrained face network that works offline: dlib's face descriptor ResNet, in torch.

* :class:`IdentityLoss` (``loss_G_id``): 1 - cosine similarity between the descriptors of the output and of the
  source. SimSwap and FaceShifter call it the identity loss, L_id = 1 - cos(z_id(X_s), z_id(Y_s,t)), with ArcFace
  as z_id; here z_id is dlib's ResNet (99.38 % on LFW), whose weights ship with ``face-recognition-models``.
* :class:`FacePerceptualLoss` (``loss_G_face``): weighted L1 between the feature maps of the network's five
  residual levels on output and target, the perceptual/feature-matching loss of Johnson et al. and pix2pixHD
  (L_VGG) with a face network in place of VGG19, for machines where VGG's weights cannot be downloaded.

Both cut dlib's 150x150 chips from the images with :func:`faceswaplab.faces.chip.face_chip` (differentiable),
so any aligned crop size works. The network is frozen and kept out of the module's parameters and state dict
(checkpoints do not carry its 22 MB), but moves with ``.to()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from faceswaplab.faces.chip import face_chip
from faceswaplab.nets.dlib_resnet import CHIP_SIZE, DlibFaceResNet, dlib_resnet


class _FaceNetLoss(nn.Module):
    def __init__(self, net: DlibFaceResNet | None = None, padding: float = 0.25):
        super().__init__()
        net = net if net is not None else dlib_resnet()
        self._net = [net.eval().requires_grad_(False)]  # a list: not a submodule
        self.padding = float(padding)

    @property
    def net(self) -> DlibFaceResNet:
        return self._net[0]

    def _apply(self, fn, *args, **kwargs):
        self._net[0]._apply(fn, *args, **kwargs)  # .to(), .cuda(), .half() reach the frozen network too
        return super()._apply(fn, *args, **kwargs)

    def chips(self, images: torch.Tensor, landmarks=None) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] (+ (B, 68, 2) landmarks; canonical framing without) -> (B, 3, 150, 150)."""
        return face_chip(images, landmarks, CHIP_SIZE, self.padding)


class IdentityLoss(_FaceNetLoss):
    """``1 - cos(net(output), net(source))``, averaged over the batch.

    `source` is images (B, 3, H, W) (their descriptors are not differentiated) or precomputed unit descriptors
    (B, 128) from :meth:`embed`.
    """

    def embed(self, images: torch.Tensor, landmarks=None) -> torch.Tensor:
        """Unit 128-d descriptors (B, 128) of the faces, differentiable in `images`."""
        return F.normalize(self.net(self.chips(images, landmarks)), dim=1)

    def forward(self, output: torch.Tensor, source: torch.Tensor, output_landmarks=None,
                source_landmarks=None) -> torch.Tensor:
        e_out = self.embed(output, output_landmarks)  # (B, 128)
        if source.dim() == 4:
            with torch.no_grad():
                source = self.embed(source, source_landmarks)
        return (1 - (e_out * F.normalize(source.to(e_out), dim=1)).sum(1)).mean()


class FacePerceptualLoss(_FaceNetLoss):
    """Sum over the residual levels of ``weight_i * L1(features_i(output), features_i(target))``.

    Levels (on the 150 px chip): 32x35x35, 64x17x17, 128x8x8, 256x4x4, 256x2x2; the default weights grow with
    depth like pix2pixHD's VGG loss (1/16 ... 1). Target features are not differentiated.
    """

    def __init__(self, net: DlibFaceResNet | None = None, padding: float = 0.25,
                 weights: tuple[float, ...] = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)):
        super().__init__(net, padding)
        if len(weights) != 5:
            raise ValueError(f"FacePerceptualLoss needs 5 level weights, got {len(weights)}")
        self.weights = tuple(float(w) for w in weights)

    def forward(self, output: torch.Tensor, target: torch.Tensor, landmarks=None,
                target_landmarks=None) -> torch.Tensor:
        """`landmarks` locate the face in `output`; `target_landmarks` in `target` (default: the same)."""
        f_out = self.net.features(self.chips(output, landmarks))
        with torch.no_grad():
            f_tgt = self.net.features(self.chips(target, landmarks if target_landmarks is None else target_landmarks))
        return sum(w * F.l1_loss(a, b) for w, a, b in zip(self.weights, f_out, f_tgt))
