"""Small image conversions between numpy (H, W, 3) uint8 RGB and torch (3, H, W) float in [-1, 1].

Resizing keeps landmarks in step: with pixel centres at integers an image of size S spans [-0.5, S - 0.5], so a
point x maps to (x + 0.5) * S' / S - 0.5.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


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
