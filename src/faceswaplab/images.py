"""Image conversions between numpy (H, W, 3) uint8 RGB, PIL images and torch (3, H, W) float in [-1, 1].

Resizing keeps landmarks in step: with pixel centres at integers an image of size S spans [-0.5, S - 0.5], so a
point x maps to (x + 0.5) * S' / S - 0.5.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from PIL import Image

# What `FaceSwapMethod.swap` takes and gives back: one kind in, the same kind out.
Images = Union[torch.Tensor, np.ndarray, "Image.Image", Sequence[Union[np.ndarray, "Image.Image"]]]
Landmarks = Union[torch.Tensor, np.ndarray, None]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (N, H, W, 3) uint8 RGB -> (3, H, W) or (N, 3, H, W) float32 in [-1, 1].

    >>> image = np.zeros((4, 6, 3), np.uint8)
    >>> image[..., 0] = 255  # red
    >>> x = to_tensor(image)
    >>> x.shape, x.dtype, x[:, 0, 0].tolist()
    (torch.Size([3, 4, 6]), torch.float32, [1.0, -1.0, -1.0])
    >>> bool((to_image(x) == image).all())  # to_image is the inverse
    True
    """
    if image.dtype != np.uint8:
        raise TypeError(f"to_tensor expects uint8 images, got {image.dtype}")
    # torch cannot wrap read-only arrays (decoders and caches hand them out): copy those.
    x = torch.from_numpy(np.ascontiguousarray(image) if image.flags.writeable else image.copy())
    x = x.movedim(-1, -3).float()
    return x.div_(127.5).sub_(1.0)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (N, 3, H, W) float in [-1, 1] (any device) -> (H, W, 3) or (N, H, W, 3) uint8 RGB.

    Values outside [-1, 1] are clipped:

    >>> to_image(torch.tensor([-2.0, 0.0, 1.0]).reshape(1, 3, 1, 1)).tolist()
    [[[[0, 128, 255]]]]
    """
    x = tensor.detach().float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return x.to(torch.uint8).movedim(-3, -1).cpu().numpy()


def scale_landmarks(landmarks, from_size: float, to_size: float):
    """Map pixel points from an image of side `from_size` to one of side `to_size` (numpy or torch).

    A pixel centre maps to the centre of the area that pixel covers: pixel 0 of 64 covers pixels 0 and 1 of 128.

    >>> scale_landmarks(np.array([[0.0, 63.0]]), 64, 128).tolist()
    [[0.5, 126.5]]
    """
    s = to_size / from_size
    return (landmarks + 0.5) * s - 0.5


def resize_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a square crop to `size` x `size` and rescale its landmarks to match.

    >>> from faceswaplab.data.synthetic import SyntheticFaces
    >>> face = SyntheticFaces(seed=0).sample(0, 0, size=64)
    >>> image, landmarks = resize_face(face.image, face.landmarks, 32)
    >>> image.shape, landmarks.shape, bool(np.allclose(landmarks, (face.landmarks + 0.5) / 2 - 0.5))
    ((32, 32, 3), (68, 2), True)
    """
    h, w = image.shape[:2]
    if h != w:
        raise ValueError(f"resize_face expects a square crop, got {w}x{h}")
    if h == size:
        return image, landmarks.astype(np.float32, copy=False)
    # INTER_AREA avoids aliasing when shrinking; cubic is sharper when enlarging.
    interp = cv2.INTER_AREA if size < h else cv2.INTER_CUBIC
    out = cv2.resize(image, (size, size), interpolation=interp)
    return out, scale_landmarks(landmarks.astype(np.float32), h, size).astype(np.float32)


def make_grid(images: torch.Tensor | list[torch.Tensor], nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Tile images in [-1, 1] ((N, C, H, W) or a list of (N_i, C, H, W) shown as rows) into one uint8 RGB image.

    Single-channel tensors (masks in [0, 1] should be mapped to [-1, 1] first) are shown as grey.

    >>> images = torch.zeros(6, 3, 16, 16)
    >>> make_grid(images, nrow=3, padding=2).shape  # 2 rows of 3, 2 px borders
    (38, 56, 3)
    >>> make_grid([images[:3], images[:1]], padding=2).shape  # rows of different lengths are padded
    (38, 56, 3)
    """
    from torchvision.utils import make_grid as tv_make_grid

    if isinstance(images, (list, tuple)):
        nrow = max(int(x.shape[0]) for x in images)
        rows = []
        for x in images:
            x = x.detach().float().cpu()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[0] < nrow:  # pad short rows with black so rows stay aligned
                x = torch.cat([x, x.new_full((nrow - x.shape[0], *x.shape[1:]), -1.0)])
            rows.append(x)
        images = torch.cat(rows)
    images = images.detach().float().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    grid = tv_make_grid(images, nrow=nrow, padding=padding, pad_value=-1.0)
    return to_image(grid)


def label_columns(grid: np.ndarray, names: list[str], height: int = 14) -> np.ndarray:
    """Put a header row above a grid of equal columns (as :func:`make_grid` tiles them): one name per column,
    centred, in a font shrunk until it fits the column.

    >>> grid = np.zeros((34, 66, 3), np.uint8)  # 2 columns of 32 px with 2 px borders
    >>> labelled = label_columns(grid, ["source", "target"])
    >>> labelled.shape, bool(labelled[:14].max() > 0)
    ((48, 66, 3), True)
    """
    from PIL import Image, ImageDraw, ImageFont

    header = Image.new("RGB", (grid.shape[1], height))
    draw = ImageDraw.Draw(header)
    width = grid.shape[1] / len(names)
    for i, name in enumerate(names):
        for size in range(height - 3, 5, -1):  # the largest size that fits the column
            font = ImageFont.load_default(size=size)
            if draw.textlength(name, font=font) <= width - 2:
                break
        draw.text(((i + 0.5) * width, height / 2), name, fill=(255, 255, 255), font=font, anchor="mm")
    return np.concatenate([np.asarray(header), grid], 0)


def to_batch(images: Images, device: torch.device, role: str) -> tuple[str, torch.Tensor]:
    """(kind, (B, 3, H, W) float tensor in [-1, 1] on `device`); kind is "tensor", "numpy", "pil" or "list"."""
    from PIL import Image

    if isinstance(images, torch.Tensor):
        if not images.is_floating_point():
            raise TypeError(f"{role}: tensors must be float in [-1, 1], got {images.dtype} "
                            f"(numpy uint8 images are converted for you)")
        if images.ndim not in (3, 4) or images.shape[-3] != 3:
            raise ValueError(f"{role}: expected a tensor (B, 3, H, W) or (3, H, W), got {tuple(images.shape)}")
        x = images if images.ndim == 4 else images[None]
        return "tensor", x.to(device)
    if isinstance(images, Image.Image):
        return "pil", to_tensor(np.asarray(images.convert("RGB")))[None].to(device)
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4) or images.shape[-1] != 3:
            raise ValueError(f"{role}: expected a numpy image (H, W, 3) or batch (B, H, W, 3), got {images.shape}")
        x = to_tensor(images)  # raises for anything but uint8
        return "numpy", (x if x.ndim == 4 else x[None]).to(device)
    if isinstance(images, (list, tuple)) and images:
        arrays = [np.asarray(im.convert("RGB")) if isinstance(im, Image.Image) else im for im in images]
        if not all(isinstance(a, np.ndarray) and a.ndim == 3 and a.shape[-1] == 3 for a in arrays):
            raise ValueError(f"{role}: a list must hold numpy images (H, W, 3) or PIL images")
        if len({a.shape for a in arrays}) > 1:
            shapes = sorted({a.shape for a in arrays})
            raise ValueError(f"{role}: the images of a list must share one size, got {shapes}")
        return "list", to_tensor(np.stack(arrays)).to(device)
    raise TypeError(f"{role}: expected a tensor, a numpy image, a PIL image or a list of images, "
                    f"got {type(images).__name__}")


def to_landmarks(landmarks: Landmarks, n: int, device: torch.device, role: str) -> torch.Tensor | None:
    """(68, 2) or (B, 68, 2), numpy or tensor -> a float (n, 68, 2) tensor on `device` (one set is shared)."""
    if landmarks is None:
        return None
    lm = landmarks if isinstance(landmarks, torch.Tensor) else torch.as_tensor(np.asarray(landmarks, np.float32))
    lm = lm.to(device) if lm.is_floating_point() else lm.to(device, torch.float32)
    if lm.ndim == 2:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2) or lm.shape[0] not in (1, n):
        raise ValueError(f"{role} must be (68, 2) or ({n}, 68, 2), got {tuple(lm.shape)}")
    return lm.expand(n, -1, -1) if lm.shape[0] != n else lm


def from_batch(kind: str, out: torch.Tensor, like: Images) -> Images:
    """The swap result (B, 3, H, W) as the kind of image(s) `like` was."""
    from PIL import Image

    images = to_image(out)  # (B, H, W, 3) uint8
    if kind == "pil":
        return Image.fromarray(images[0])
    if kind == "numpy":
        return images if like.ndim == 4 else images[0]
    return [Image.fromarray(im) if isinstance(src, Image.Image) else im for im, src in zip(images, like)]


def resize_batch(images: torch.Tensor, landmarks: torch.Tensor | None, size: int):
    """Square crops (B, 3, S, S) resized to `size` (antialiased when shrinking) and their (B, 68, 2) landmarks
    rescaled to match; both are returned unchanged when S is already `size`."""
    s = images.shape[-1]
    if images.shape[-2] != s:
        raise ValueError(f"face crops must be square, got {images.shape[-1]}x{images.shape[-2]}")
    if s == size:
        return images, landmarks
    out = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=size < s)
    return out.clamp(-1, 1), (None if landmarks is None else scale_landmarks(landmarks, s, size))
