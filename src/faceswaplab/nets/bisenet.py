"""BiSeNet (Yu et al., ECCV 2018) as used for face parsing on CelebAMask-HQ's 19 classes.

The layout (a ResNet-18 context path with attention refinement on its 1/16 and 1/32 features, the 1/8 features as
the spatial path, a feature fusion module and three output heads) and the parameter names follow the widely
shared face-parsing checkpoint ``79999_iter.pth``, so that file loads with ``load_state_dict`` as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

# CelebAMask-HQ labels in the order of the face-parsing checkpoint's output channels.
CELEBAMASK_CLASSES = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r", "nose", "mouth",
    "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.add_module("relu", nn.ReLU(inplace=True))


class AttentionRefinement(nn.Module):
    """Features reweighted per channel by a gate computed from their global average."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x):
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))


class ContextPath(nn.Module):
    """ResNet-18 -> (1/8 features (B, 128), refined 1/16 context at 1/8 (B, 128), refined 1/32 context at 1/16)."""

    def __init__(self):
        super().__init__()
        self.resnet = torchvision.models.resnet18(weights=None)
        del self.resnet.fc, self.resnet.avgpool
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, k=1)

    def forward(self, x):
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        feat8 = r.layer2(r.layer1(x))
        feat16 = r.layer3(feat8)
        feat32 = r.layer4(feat16)
        glob = self.conv_avg(feat32.mean((2, 3), keepdim=True))
        up32 = self.conv_head32(F.interpolate(self.arm32(feat32) + glob, size=feat16.shape[-2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(feat16) + up32, size=feat8.shape[-2:], mode="nearest"))
        return feat8, up16, up32


class FeatureFusion(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, k=1)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial, context):
        feat = self.convblk(torch.cat([spatial, context], 1))
        gate = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)))))
        return feat + feat * gate


class OutputHead(nn.Module):
    def __init__(self, cin: int, mid: int, n_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x):
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """(B, 3, H, W) ImageNet-normalised RGB -> class logits (B, n_classes, H, W) of the main head.

    The two auxiliary heads (``conv_out16``, ``conv_out32``) only served training; they are kept so that the
    checkpoint's parameters all have a home.
    """

    def __init__(self, n_classes: int = len(CELEBAMASK_CLASSES)):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, n_classes)
        self.conv_out16 = OutputHead(128, 64, n_classes)
        self.conv_out32 = OutputHead(128, 64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat8, context8, _ = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))  # (B, C, H/8, W/8)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=True)
