"""VGG19 feature pyramid for perceptual losses (Simonyan and Zisserman 2015; used by pix2pixHD, Wang et al. 2018).

ImageNet weights come from torchvision's own loader and cache (``$TORCH_HOME/hub/checkpoints``); the file is
checked for first, so an offline machine gets one line naming it instead of a failed download.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from faceswaplab.faces.backends import MissingWeightsError

# Ends of the slices relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's vgg19().features.
SLICE_ENDS = (2, 7, 12, 21, 30)


def vgg19_weights_path() -> Path:
    """Where torchvision keeps (or would download) the ImageNet VGG19 weights."""
    import torchvision.models as tvm

    url = tvm.VGG19_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


class VGG19Features(nn.Module):
    """(B, 3, H, W) -> the five maps relu1_1 .. relu5_1 of a frozen VGG19.

    ``pretrained=True`` loads torchvision's ImageNet weights from the cache (raises
    :class:`~faceswaplab.faces.backends.MissingWeightsError` naming the file when it is absent); ``False`` keeps
    torchvision's random initialisation (tests, or a network trained elsewhere and loaded afterwards).
    """

    def __init__(self, pretrained: bool = True):
        super().__init__()
        import torchvision.models as tvm

        if pretrained:
            path = vgg19_weights_path()
            if not path.is_file():
                raise MissingWeightsError(
                    f"VGG19 perceptual loss: weights file {path.name} not found at {path}; run once with internet "
                    f"`python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\"` "
                    f"or set TORCH_HOME to a cache that has it")
            features = tvm.vgg19(weights=tvm.VGG19_Weights.IMAGENET1K_V1).features
        else:
            features = tvm.vgg19(weights=None).features
        starts = (0,) + SLICE_ENDS[:-1]
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in zip(starts, SLICE_ENDS))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Features":
        return super().train(False)  # frozen: no mode changes with the method around it

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out
