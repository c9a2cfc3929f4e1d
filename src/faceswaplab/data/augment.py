"""Batched, device-agnostic augmentations of face crops that keep landmarks in step.

Images are (B, C, H, W) float (usually in [-1, 1]), landmarks (B, K, 2) pixel (x, y) with pixel centres at
integers. Randomness comes from an optional ``torch.Generator`` (on any device), so results are reproducible; a
list of B generators gives each sample its own, and a sample then gets what a call on it alone would give.

A *flow* is (B, 2, H, W) in pixels with ``out[p] = in[p + flow[p]]`` (backward warping, what ``grid_sample``
does). :func:`warp_points` maps points the other way (where does an input point land in the output), so masks,
part maps and landmarks can be warped consistently with an image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from faceswaplab.faces import template as T

Generators = torch.Generator | Sequence[torch.Generator] | None  # one for the batch, or one per sample

# Roll change of the synthetic renderer's pose per degree of clockwise (on screen) image rotation.
ROLL_PER_CLOCKWISE_DEGREE = 1.0


def _draw(fn, shape, generator, device) -> torch.Tensor:
    if isinstance(generator, (list, tuple)):  # one per sample: each draws what it would for a batch of one
        return torch.cat([_draw(fn, (1, *shape[1:]), g, device) for g in generator])
    gen_device = generator.device if generator is not None else device
    return fn(shape, generator=generator, device=gen_device).to(device)


def _rand(shape, generator, device) -> torch.Tensor:
    """Uniform [0, 1) drawn on the generator's device (so a CPU generator works for CUDA images)."""
    return _draw(torch.rand, shape, generator, device)


def _randn(shape, generator, device) -> torch.Tensor:
    return _draw(torch.randn, shape, generator, device)


def pixel_grid(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(H, W, 2) pixel-centre coordinates (x, y)."""
    ys = torch.arange(h, device=device, dtype=dtype)
    xs = torch.arange(w, device=device, dtype=dtype)
    qy, qx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([qx, qy], -1)


def sample_at(images: torch.Tensor, xy: torch.Tensor, mode: str = "bilinear", padding: str = "border") -> torch.Tensor:
    """Sample images (B, C, H, W) at pixel coordinates xy (B, h, w, 2) -> (B, C, h, w)."""
    H, W = images.shape[-2:]
    scale = torch.tensor([2.0 / W, 2.0 / H], device=xy.device, dtype=xy.dtype)
    grid = (xy + 0.5) * scale - 1.0  # pixel centres -> align_corners=False normalised coordinates
    return F.grid_sample(images, grid.to(images.dtype), mode=mode, padding_mode=padding, align_corners=False)


def apply_flow(x: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear", padding: str = "border") -> torch.Tensor:
    """Warp x (B, C, H, W) by a flow (B, 2, H, W): ``out[p] = x[p + flow[p]]``."""
    H, W = x.shape[-2:]
    xy = pixel_grid(H, W, x.device, flow.dtype)[None] + flow.permute(0, 2, 3, 1)
    return sample_at(x, xy, mode, padding)


def warp_points(points: torch.Tensor, flow: torch.Tensor, iters: int = 8) -> torch.Tensor:
    """Where input points (B, K, 2) land after :func:`apply_flow` with `flow`: solves ``p + flow(p) = q``.

    Fixed-point iterations p <- q - flow(p) converge for smooth flows whose gradient is below 1 (random warps).
    """
    p = points.clone()
    for _ in range(iters):
        f = sample_at(flow, p[:, :, None, :])[..., 0].transpose(1, 2)  # (B, K, 2)
        p = points - f
    return p


def random_warp(
    images: torch.Tensor,
    strength: float = 0.03,
    grid: int = 5,
    generator: Generators = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepFakes-style random warp: random offsets on a coarse `grid` x `grid` lattice, smoothly upsampled.

    strength: standard deviation of the offsets as a fraction of the image size (0 gives the identity).
    Returns (warped images (B, C, H, W), flow (B, 2, H, W) in pixels); warp masks with :func:`apply_flow` and
    landmarks with :func:`warp_points`.
    """
    B, _, H, W = images.shape
    coarse = _randn((B, 2, grid, grid), generator, images.device) * strength
    coarse = coarse * torch.tensor([W, H], device=images.device, dtype=coarse.dtype).view(1, 2, 1, 1)
    flow = F.interpolate(coarse, size=(H, W), mode="bicubic", align_corners=True)
    if strength == 0:
        return images.clone(), flow
    return apply_flow(images, flow.to(images.dtype)), flow


def flip_landmarks(landmarks: torch.Tensor, width: int) -> torch.Tensor:
    """Mirror 68-point landmarks (B, 68, 2) of an image of `width` pixels, relabelling left and right points."""
    perm = torch.as_tensor(T.FLIP_PERMUTATION, device=landmarks.device)
    out = landmarks[:, perm].clone()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def random_flip(
    images: torch.Tensor, landmarks: torch.Tensor, p: float = 0.5, generator: Generators = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mirror each sample with probability p. Returns (images, landmarks, flipped (B,) bool)."""
    B, _, _, W = images.shape
    flipped = _rand((B,), generator, images.device) < p
    sel = flipped.view(B, 1, 1, 1)
    images = torch.where(sel, images.flip(-1), images)
    landmarks = torch.where(flipped.view(B, 1, 1), flip_landmarks(landmarks, W), landmarks)
    return images, landmarks, flipped


def affine_matrices(
    batch: int,
    size: tuple[int, int],
    rotate: float = 0.0,
    scale: float = 0.0,
    translate: float = 0.0,
    generator: Generators = None,
    device=None,
) -> torch.Tensor:
    """Random (B, 2, 3) pixel affines about the image centre: rotation within +-rotate degrees, scale within
    1 +- scale, translation within +-translate of the image size."""
    H, W = size
    u = _rand((batch, 4), generator, device) * 2.0 - 1.0
    ang = u[:, 0] * math.radians(rotate)
    s = 1.0 + u[:, 1] * scale
    tx, ty = u[:, 2] * translate * W, u[:, 3] * translate * H
    cos, sin = torch.cos(ang) * s, torch.sin(ang) * s
    cx, cy = (W - 1) / 2.0, (H - 1) / 2.0
    # out = R (in - c) + c + t
    m = torch.stack(
        [
            torch.stack([cos, -sin, cx - cos * cx + sin * cy + tx], -1),
            torch.stack([sin, cos, cy - sin * cx - cos * cy + ty], -1),
        ],
        1,
    )
    return m


def apply_affine(images: torch.Tensor, matrices: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """Warp images (B, C, H, W) by pixel affines (B, 2, 3) mapping input to output coordinates."""
    B, _, H, W = images.shape
    A, t = matrices[:, :, :2], matrices[:, :, 2]
    inv = torch.linalg.inv(A)  # (B, 2, 2)
    out_xy = pixel_grid(H, W, images.device, matrices.dtype)[None] - t[:, None, None]  # (B, H, W, 2)
    inv = inv[:, None, None]  # (B, 1, 1, 2, 2)
    ox, oy = out_xy[..., 0], out_xy[..., 1]
    in_xy = torch.stack([inv[..., 0, 0] * ox + inv[..., 0, 1] * oy, inv[..., 1, 0] * ox + inv[..., 1, 1] * oy], -1)
    return sample_at(images, in_xy, padding=padding)


def transform_points(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Apply (B, 2, 3) affines to points (B, K, 2)."""
    return points @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]


def random_affine(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    rotate: float = 10.0,
    scale: float = 0.05,
    translate: float = 0.05,
    generator: Generators = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Small random similarity jitter. Returns (images, landmarks, matrices (B, 2, 3))."""
    B, _, H, W = images.shape
    m = affine_matrices(B, (H, W), rotate, scale, translate, generator, images.device)
    return apply_affine(images, m), transform_points(landmarks.float(), m), m


def color_jitter(
    images: torch.Tensor,
    brightness: float = 0.1,
    contrast: float = 0.1,
    saturation: float = 0.1,
    generator: Generators = None,
) -> torch.Tensor:
    """Random brightness, contrast and saturation factors in 1 +- the given amounts, for RGB in [-1, 1]."""
    B = images.shape[0]
    f = 1.0 + (_rand((B, 3), generator, images.device) * 2.0 - 1.0) * torch.tensor(
        [brightness, contrast, saturation], device=images.device
    )
    x = (images + 1.0) * 0.5  # [0, 1]
    x = x * f[:, 0].view(B, 1, 1, 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * f[:, 1].view(B, 1, 1, 1) + mean
    gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = (x - gray) * f[:, 2].view(B, 1, 1, 1) + gray
    return x.clamp(0.0, 1.0) * 2.0 - 1.0


@dataclass
class Augment:
    """Training augmentation of face crops with their landmarks (masks are recomputed from the landmarks).

    flip: probability of a mirror. rotate (degrees), scale, translate (fraction of the size): affine jitter.
    brightness, contrast, saturation: colour jitter amounts. warp: random-warp strength (0 = off); methods that
    need the unwarped target (the DeepFakes autoencoder) call :func:`random_warp` themselves instead.
    """

    flip: float = 0.5
    rotate: float = 0.0
    scale: float = 0.0
    translate: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    warp: float = 0.0

    def __call__(
        self,
        images: torch.Tensor,
        landmarks: torch.Tensor,
        generator: Generators = None,
        return_info: bool = False,
    ):
        """Augment images (B, C, H, W) and landmarks (B, 68, 2) -> (images, landmarks) of the same shapes. The first
        three channels are RGB; any further ones (masks) follow the geometry and skip the colour jitter.

        With `return_info`, also a dict: ``flipped`` (B,) bool and ``angle`` (B,) degrees of the in-plane
        rotation applied after the flip (positive turns the image clockwise on screen).
        """
        B = images.shape[0]
        flipped = torch.zeros(B, dtype=torch.bool, device=images.device)
        angle = torch.zeros(B, device=images.device)
        if self.flip > 0:
            images, landmarks, flipped = random_flip(images, landmarks, self.flip, generator)
        if self.rotate > 0 or self.scale > 0 or self.translate > 0:
            images, landmarks, m = random_affine(images, landmarks, self.rotate, self.scale, self.translate, generator)
            angle = torch.rad2deg(torch.atan2(m[:, 1, 0], m[:, 0, 0]))
        if self.warp > 0:
            images, flow = random_warp(images, self.warp, generator=generator)
            landmarks = warp_points(landmarks, flow)
        if self.brightness > 0 or self.contrast > 0 or self.saturation > 0:
            rgb = color_jitter(images[:, :3], self.brightness, self.contrast, self.saturation, generator)
            images = torch.cat([rgb, images[:, 3:]], 1) if images.shape[1] > 3 else rgb
        if return_info:
            return images, landmarks, {"flipped": flipped, "angle": angle}
        return images, landmarks

    @staticmethod
    def adjust_pose(pose: torch.Tensor, info: dict) -> torch.Tensor:
        """Head pose (B, 3) yaw, pitch, roll in degrees as seen after the augmentation described by `info`.

        A mirror negates yaw and roll; an in-plane rotation adds to the roll.
        """
        pose = pose.clone()
        sign = torch.where(info["flipped"], -1.0, 1.0).to(pose)
        pose[:, 0] = pose[:, 0] * sign
        pose[:, 2] = pose[:, 2] * sign + ROLL_PER_CLOCKWISE_DEGREE * info["angle"].to(pose)
        return pose
