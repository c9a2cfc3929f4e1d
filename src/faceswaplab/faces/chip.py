"""dlib's face chips in torch: batched and differentiable in the image (``dlib.get_face_chip`` semantics).

dlib's face descriptor expects 150x150 chips cut the way ``get_face_chip_details`` + ``extract_image_chip`` cut
them (dlib/image_transforms/interpolation.h); :func:`face_chip` reproduces that geometry:

1. the least-squares similarity (Umeyama) from dlib's mean face shape, padded by `padding` on each side and scaled
   to `size`, onto the landmarks (5-point: dlib's 5 landmarks; 68-point: eyes, nose and the upper mouth);
2. a square of ``size * scale`` (minus one) image pixels centred on the image of the chip centre, rotated by the
   similarity's angle; chip pixel (0, 0) lands on its top-left corner and (size-1, size-1) on its bottom-right;
3. when the square covers more than twice the chip in each direction, dlib samples a level of its 2:1 image
   pyramid (a 5x5 binomial filter, every other pixel) built on a crop around the face, so the chip is
   anti-aliased; the crop's origin decides which pixels the pyramid keeps, so it is reproduced too;
4. bilinear interpolation; a chip pixel whose 2x2 neighbourhood leaves the image is black.

dlib stores its pyramid levels and chips as 8-bit pixels (truncating); ``quantize=True`` truncates the same way,
with a straight-through gradient, for exact comparisons. Gradients flow to the image, not to the landmarks.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from faceswaplab.faces.template import canonical_landmarks

# dlib's mean face shape (x, y in [0, 1]) for landmarks 17-67 of the 68-point scheme, and the 5-point one.
_MEAN_X = (0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
           0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737,
           0.187122, 0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751,
           0.719335, 0.254149, 0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
           0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127,
           0.42689)
_MEAN_Y = (0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915,
           0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326,
           0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423,
           0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
           0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182,
           0.831803, 0.824182)
# dlib fits the 68-point chip on these landmarks: no jaw, no brows, no lower lip.
CHIP_POINTS_68 = [i for i in range(27, 68) if not (55 <= i <= 59 or 65 <= i <= 67)]
MEAN_FACE_68 = np.array([[_MEAN_X[i - 17], _MEAN_Y[i - 17]] for i in CHIP_POINTS_68])
MEAN_FACE_5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                        [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                        [0.4901123135679, 0.6277975316475]])


def _rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def _umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, float, np.ndarray]:
    """dlib's ``find_similarity_transform`` (Umeyama, with its reflection rule): (scale, angle, translation)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s**2).sum(1).mean()
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.ones(2)
    det = np.linalg.det(cov)
    if det < 0 or (det == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        e[1 if sig[1] < sig[0] else 0] = -1
    r = u @ np.diag(e) @ vt
    c = (sig * e).sum() / var if var != 0 else 1.0
    m = c * r
    return math.hypot(m[0, 0], m[1, 0]), math.atan2(m[1, 0], m[0, 0]), mu_d - m @ mu_s


def chip_details(landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> tuple[np.ndarray, float]:
    """dlib's ``get_face_chip_details`` for (68, 2) or (5, 2) landmarks: the chip's square ``(left, top, right,
    bottom)`` in image pixels before rotation, and its rotation angle (radians)."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape == (68, 2):
        src, dst = MEAN_FACE_68, lm[CHIP_POINTS_68]
    elif lm.shape == (5, 2):
        src, dst = MEAN_FACE_5, lm
    else:
        raise ValueError(f"face chips need (68, 2) or (5, 2) landmarks, got {lm.shape}")
    src = (padding + src) / (2 * padding + 1) * size
    scale, angle, t = _umeyama(src, dst)
    c = scale * _rotation(angle) @ np.array([size / 2, size / 2]) + t
    half = (size * scale - 1) / 2  # dlib's centered_drect shrinks the width by one
    return np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half]), angle


def _rect_down(rect: np.ndarray) -> np.ndarray:
    # pyramid_down<2>::rect_down: both corners go p / 2 - (1.25, 0.75).
    return rect / 2 - np.array([1.25, 0.75, 1.25, 0.75])


def _area(rect: np.ndarray) -> float:
    return (rect[2] - rect[0] + 1) * (rect[3] - rect[1] + 1)


def _pyramid_plan(rect: np.ndarray, angle: float, size: int, height: int, width: int):
    """How dlib's ``extract_image_chips`` samples one chip: the integer crop ``(x0, y0, x1, y1)`` (inclusive) the
    pyramid is built on, the number of pyramid levels, and the chip's square in that level's pixels."""
    levels, grow, r = 0, 2.0, _rect_down(rect)
    while _area(r) > size * size:
        r, levels, grow = _rect_down(r), levels + 1, grow * 2 + 2
    c = (rect[:2] + rect[2:]) / 2
    corners = (np.array([[rect[0], rect[1]], [rect[2], rect[1]], [rect[0], rect[3]], [rect[2], rect[3]]]) - c) \
        @ _rotation(angle).T + c
    lo = np.maximum(corners.min(0) - grow, 0)
    hi = np.minimum(corners.max(0) + grow, [width - 1, height - 1])
    x0, y0, x1, y1 = (int(math.floor(v + 0.5)) for v in (*lo, *hi))  # std::lround (values are >= 0)
    r = rect - np.array([x0, y0, x0, y0])
    for _ in range(levels):
        r = _rect_down(r)
    return (x0, y0, x1, y1), levels, r


def _chip_affine(rect: np.ndarray, angle: float, size: int) -> np.ndarray:
    """(2, 3) map from chip pixels (u, v, 1) to source pixels: chip corners onto the rotated `rect`'s corners."""
    c = (rect[:2] + rect[2:]) / 2
    rot = _rotation(angle)
    step = (rect[2:] - rect[:2]) / (size - 1)  # source pixels per chip pixel, before rotation
    return np.concatenate([rot * step, (rot @ (rect[:2] - c) + c)[:, None]], 1)


def _floor_st(x: torch.Tensor) -> torch.Tensor:
    """Truncation to integers (x >= 0) with a straight-through gradient. Values a rounding error below an integer
    (from the [-1, 1] <-> 0..255 conversions) count as that integer."""
    eps = torch.finfo(x.dtype).eps * 1024
    return x + (torch.floor(x + eps) - x).detach()


def _pyramid_down(x: torch.Tensor, quantize: bool) -> torch.Tensor:
    """dlib's ``pyramid_down<2>`` on (B, C, H, W) pixel values: 5x5 binomial filter / 256, keep every other pixel
    from (2, 2); output ((H - 3) // 2, (W - 3) // 2)."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device)
    k2 = (k[:, None] * k[None]).expand(x.shape[1], 1, 5, 5) / 256
    y = F.conv2d(x, k2, stride=2, groups=x.shape[1])
    return _floor_st(y) if quantize else y


def _bilinear(src: torch.Tensor, affines: np.ndarray, size: int, fill: float) -> torch.Tensor:
    """dlib's ``interpolate_bilinear`` of src (B, C, H, W) at the chip pixels' images under (B, 2, 3) `affines`
    -> (B, C, size, size); chip pixels whose 2x2 source neighbourhood leaves `src` get `fill` (grid_sample alone
    would blend zeros in partially)."""
    B, C, H, W = src.shape
    a = torch.as_tensor(affines, dtype=torch.float64, device=src.device)  # (B, 2, 3)
    r = torch.arange(size, dtype=torch.float64, device=src.device)
    uv1 = torch.stack([r[None].expand(size, -1), r[:, None].expand(-1, size), torch.ones(size, size,
                       dtype=torch.float64, device=src.device)], -1)  # (size, size, 3): (u, v, 1)
    xy = torch.einsum("hwk,bjk->bhwj", uv1, a)  # (B, size, size, 2) source pixels
    x, y = xy[..., 0], xy[..., 1]
    valid = ((x >= 0) & (y >= 0) & (x < W - 1) & (y < H - 1))[:, None]
    norm = torch.stack([2 * x / (W - 1) - 1, 2 * y / (H - 1) - 1], -1).to(src.dtype)
    out = F.grid_sample(src, norm, mode="bilinear", padding_mode="zeros", align_corners=True)
    return torch.where(valid, out, torch.full_like(out, fill))


def face_chip(images: torch.Tensor, landmarks=None, size: int = 150, padding: float = 0.25,
              quantize: bool = False) -> torch.Tensor:
    """dlib's face chips: images (B, 3, H, W) in [-1, 1] + landmarks (B, 68, 2) or (B, 5, 2) in pixels ->
    (B, 3, size, size) in [-1, 1], as ``dlib.get_face_chip(image, shape, size, padding)`` cuts them.

    ``padding=0.25``, ``size=150`` is what ``compute_face_descriptor`` uses. Without landmarks the images must be
    square crops in the canonical framing (:func:`faceswaplab.faces.template.canonical_landmarks`).
    Differentiable in `images`.
    """
    B, _, H, W = images.shape
    if landmarks is None:
        if H != W:
            raise ValueError(f"without landmarks the images must be square canonical crops, got {H}x{W}")
        landmarks = np.broadcast_to(canonical_landmarks(H), (B, 68, 2))
    lms = torch.as_tensor(landmarks).detach().cpu().double().numpy() if not isinstance(landmarks, np.ndarray) \
        else np.asarray(landmarks, np.float64)
    if lms.ndim != 3 or len(lms) != B:
        raise ValueError(f"landmarks must be ({B}, 68 or 5, 2), got {lms.shape}")
    out: list[torch.Tensor | None] = [None] * B
    direct = []  # (face, affine) of faces sampled from the image itself (no pyramid level): batched
    for i, lm in enumerate(lms):
        rect, angle = chip_details(lm, size, padding)
        (x0, y0, x1, y1), levels, r = _pyramid_plan(rect, angle, size, H, W)
        if levels == 0:  # the map in crop coordinates, then shifted, as dlib computes it (same rounding)
            m = _chip_affine(rect - [x0, y0, x0, y0], angle, size)
            m[:, 2] += [x0, y0]
            direct.append((i, m))
            continue
        src = (images[i:i + 1, :, y0:y1 + 1, x0:x1 + 1] + 1) * 127.5  # dlib's pyramid works on pixel values
        for _ in range(levels):
            if min(src.shape[2:]) <= 8:  # dlib's pyramid_down gives an empty image: the chip is black
                break
            src = _pyramid_down(src, quantize)
        else:
            out[i] = _bilinear(src, _chip_affine(r, angle, size)[None], size, 0.0)[0] / 127.5 - 1
            continue
        out[i] = torch.full((images.shape[1], size, size), -1.0, dtype=images.dtype, device=images.device)
    if direct:
        idx = [i for i, _ in direct]
        src = images if idx == list(range(B)) else images[idx]
        for i, chip in zip(idx, _bilinear(src, np.stack([m for _, m in direct]), size, -1.0)):
            out[i] = chip
    chips = torch.stack(out)  # (B, 3, size, size) in [-1, 1]
    if quantize:
        chips = _floor_st((chips + 1) * 127.5) / 127.5 - 1
    return chips
