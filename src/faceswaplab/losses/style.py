"""The losses of face swapping as style transfer (Korshunova et al. 2017, section 3.2), on a frozen feature network.

* :func:`patch_style_loss`: the patch-based style loss (after Li and Wand 2016's CNNMRF). Every k x k patch of the
  output's feature map is matched to the most similar patch of the style images' maps of the same layer, by
  normalised cross-correlation (cosine similarity of the patch vectors); the loss is the squared distance of each
  patch to its match (divided by the patch's size), averaged over the output's patches. ``search="position"`` is
  the paper's restriction for aligned faces: the candidates of the patch at position i are the patches at
  position i of the style images (the N_best style images of similar pose); ``search="all"`` takes every patch of
  every style image (CNNMRF).
* :func:`lighting_map`: the stand-in for the paper's lighting network (a network trained on the Extended Yale
  Face Database B to tell lighting conditions apart, whose weights were never published): the image's
  low-frequency luminance with its mean removed, i.e. the direction and shape of the shading, not the skin tone.
* :func:`tv_loss`: total variation.
* :class:`StyleFeatures`: the frozen network whose maps the content and style losses compare: ``vgg19`` (the
  paper's, torchvision's ImageNet weights from the normal cache) or ``face`` (dlib's face ResNet, whose weights
  ship with a package: the stand-in where VGG19's cannot be had).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Layers each network gives: the paper's VGG19 layers (content relu4_2, style relu3_1 and relu4_1 for 128 px),
# and the face ResNet's levels at about the same strides of the 150 px chip (level0: 32x35x35, level1: 64x17x17).
# The face ResNet's early maps tell the looks of two identities apart less well than the pixels do (a photo of the
# other identity scores 1.6x its own identity's patch distance at level0, 2.2x on the chip's pixels;
# experiments/styleswap.md), and the style loss is what carries skin and hair colour: the stand-in adds the chip's
# pixels, area-averaged to level0's stride ("pixels", 3x37x37, scaled by PIXEL_SCALE to the levels' magnitude),
# as a style layer (VGG19's relu3_1, which level0 replaces, is colour-sensitive).
CONTENT_LAYERS = {"vgg19": ("relu4_2",), "face": ("level1",)}
STYLE_LAYERS = {"vgg19": ("relu3_1", "relu4_1"), "face": ("pixels", "level0", "level1")}
PIXEL_SCALE = 3.0
FEATURE_NETS = tuple(CONTENT_LAYERS)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def resolve_feature_net(name: str) -> str:
    """``auto`` -> ``vgg19`` when torchvision's VGG19 weights are in the cache, else ``face``; others checked."""
    from faceswaplab.nets.vgg import vgg19_weights_path

    if name == "auto":
        return "vgg19" if vgg19_weights_path().is_file() else "face"
    if name not in FEATURE_NETS:
        raise ValueError(f"method.feature_net: unknown feature network {name!r}, expected auto or one of "
                         f"{FEATURE_NETS}")
    return name


class StyleFeatures(nn.Module):
    """Frozen feature maps for the content and style losses: ``(images, landmarks) -> {layer: (B, C, h, w)}``.

    ``vgg19``: torchvision's VGG19 on the ImageNet-normalised crop (landmarks unused; the crops are aligned);
    ``face``: dlib's face ResNet on the 150 px face chip cut with the landmarks (the canonical framing without), and
    the chip's pixels (see ``STYLE_LAYERS``).
    ``pretrained=False`` gives VGG19 random weights (tests).
    """

    def __init__(self, name: str, pretrained: bool = True):
        super().__init__()
        self.name = name
        if name == "vgg19":
            from faceswaplab.nets.vgg import VGG19Features

            vgg = VGG19Features(pretrained)
            # relu3_1 and relu4_1 end slices 2 and 3; relu4_2 is two layers (conv4_2, relu) into slice 4.
            self.net = nn.Sequential(*vgg.slices[:4], vgg.slices[4][:2])
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        elif name == "face":
            from faceswaplab.nets.dlib_resnet import dlib_resnet

            self.net = dlib_resnet()
        else:
            raise ValueError(f"unknown feature network {name!r}, expected one of {FEATURE_NETS}")
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "StyleFeatures":
        return super().train(False)  # frozen: batch statistics and mode never change

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        if self.name == "face":
            from faceswaplab.faces.chip import face_chip
            from faceswaplab.nets.dlib_resnet import CHIP_SIZE

            chips = face_chip(images, landmarks, CHIP_SIZE, 0.25)  # (B, 3, 150, 150)
            maps = self.net.features(chips)
            return {"pixels": PIXEL_SCALE * F.avg_pool2d(chips, 4), **{f"level{i}": m for i, m in enumerate(maps[:2])}}
        x = ((images + 1) / 2 - self.mean) / self.std
        out = {}
        for name, layer in zip(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2"), self.net):
            x = layer(x)
            out[name] = x
        return {k: out[k] for k in ("relu3_1", "relu4_1", "relu4_2")}


def patch_matches(output: Tensor, style: Tensor, patch_size: int = 3,
                  search: str = "position") -> tuple[Tensor, Tensor]:
    """The output's patches and their nearest style patches by normalised cross-correlation.

    output (B, C, H, W); style (B, N, C, H, W): N style maps per output (of the same layer). Patches are k x k,
    stride 1, no padding. Returns (patches (B, D, L), matched (B, D, L)) with D = C k k, L = (H-k+1)(W-k+1);
    ``matched`` carries no gradient.
    """
    B, N = style.shape[:2]
    patches = F.unfold(output, patch_size)  # (B, D, L)
    with torch.no_grad():
        cands = F.unfold(style.flatten(0, 1).detach(), patch_size).unflatten(0, (B, N))  # (B, N, D, L)
        p = F.normalize(patches.detach(), dim=1)
        if search == "position":
            best = (p[:, None] * F.normalize(cands, dim=2)).sum(2).argmax(1)  # (B, L): the style image per position
            matched = cands.gather(1, best[:, None, None].expand(-1, 1, cands.shape[2], -1)).squeeze(1)
        elif search == "all":
            flat = cands.permute(0, 2, 1, 3).flatten(2)  # (B, D, N L): image-major candidates
            best = torch.bmm(p.transpose(1, 2), F.normalize(flat, dim=1)).argmax(2)  # (B, L)
            matched = flat.gather(2, best[:, None].expand(-1, flat.shape[1], -1))
        else:
            raise ValueError(f"patch search must be 'position' or 'all', got {search!r}")
    return patches, matched


def patch_style_loss(output: Tensor, style: Tensor, patch_size: int = 3, search: str = "position") -> Tensor:
    """``||patch - nearest style patch||^2 / D``, averaged over the output's patches (D: a patch's size, as the
    content loss divides by the map's size; see :func:`patch_matches`)."""
    patches, matched = patch_matches(output, style, patch_size, search)
    return ((patches - matched) ** 2).mean()


def lighting_map(images: Tensor, size: int = 8) -> Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 1, size, size): Rec. 601 luminance, area-averaged, minus its mean."""
    lum = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2])[:, None]
    low = F.adaptive_avg_pool2d(lum, size)
    return low - low.mean((2, 3), keepdim=True)


def tv_loss(images: Tensor) -> Tensor:
    """Total variation: mean squared difference of horizontally and vertically adjacent pixels."""
    return ((images[..., 1:, :] - images[..., :-1, :]) ** 2).mean() + \
        ((images[..., :, 1:] - images[..., :, :-1]) ** 2).mean()
