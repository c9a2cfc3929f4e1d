"""Putting a face into another image: colour correction inside a mask, Poisson (seamless) cloning, feathering.

All functions take numpy images (H, W, 3) uint8 RGB of one size and a mask (H, W) (bool, uint8 0/255 or float in
[0, 1]; a float mask counts as "inside" above 0.5 where a binary region is needed), and return a new uint8 image.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

COLOR_MODES = ("lab_meanstd", "rgb_meanstd", "histogram", "blur_ratio", "none")


def _check(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Validate the shapes and return the mask as float32 in [0, 1]."""
    if src.shape != dst.shape or src.ndim != 3 or src.shape[2] != 3:
        raise ValueError(f"src {src.shape} and dst {dst.shape} must both be (H, W, 3)")
    if src.dtype != np.uint8 or dst.dtype != np.uint8:
        raise TypeError(f"expected uint8 images, got {src.dtype} and {dst.dtype}")
    mask = np.asarray(mask)
    if mask.shape != src.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match the images {src.shape[:2]}")
    if mask.dtype == np.uint8:
        return mask.astype(np.float32) / 255.0
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


def color_transfer(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, mode: str = "lab_meanstd",
                   max_gain: float = 3.0, blur: float | None = None) -> np.ndarray:
    """Recolour `src` so that its colours inside `mask` match those of `dst` inside the same mask.

    Modes: ``"lab_meanstd"`` (shift and scale each CIELAB channel to `dst`'s mean and standard deviation; the
    default), ``"rgb_meanstd"`` (the same in RGB), ``"histogram"`` (match each RGB channel's histogram),
    ``"blur_ratio"`` (local: :func:`blur_ratio_correction` with kernel size `blur`), ``"none"`` (a copy). The
    global modes recolour the whole of `src` with statistics taken inside the mask; their scale factors are
    clipped to [1 / max_gain, max_gain] so a flat region cannot blow up the contrast.
    """
    m = _check(src, dst, mask) > 0.5
    if mode not in COLOR_MODES:
        raise ValueError(f"unknown colour transfer mode {mode!r}; choose from {COLOR_MODES}")
    if mode == "none" or m.sum() < 2:
        return src.copy()
    if mode == "histogram":
        return _match_histograms(src, dst, m)
    if mode == "blur_ratio":
        return blur_ratio_correction(src, dst, m, blur, max_gain)

    lab = mode == "lab_meanstd"
    # Float LAB: L in [0, 100], a and b around [-127, 127]; no uint8 quantisation on the way.
    s = cv2.cvtColor(src.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB) if lab else src.astype(np.float32)
    d = cv2.cvtColor(dst.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB) if lab else dst.astype(np.float32)
    m8 = m.astype(np.uint8)
    mu_s, sd_s = (x.ravel() for x in cv2.meanStdDev(s, mask=m8))
    mu_d, sd_d = (x.ravel() for x in cv2.meanStdDev(d, mask=m8))
    gain = np.clip(sd_d / np.maximum(sd_s, 1e-6), 1.0 / max_gain, max_gain)
    out = (s - mu_s) * gain + mu_d
    if lab:
        out = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def blur_ratio_correction(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, blur: float | None = None,
                          max_gain: float = 3.0) -> np.ndarray:
    """Local colour correction of the classic landmark face swap: ``src * blur(dst) / blur(src)`` per channel.

    Each pixel takes the ratio of the two images' Gaussian-blurred colours around it, so lighting that varies
    across the face (one cheek in shadow) moves over too, which a global mean/std transfer cannot do. The blurs
    are normalised inside `mask` (pixels outside it, e.g. the black outside a warp, do not darken the edges);
    `blur` is the Gaussian kernel size in pixels (0.6 times the distance between the eye centres in the classic
    recipe; by default 0.25 times the square root of the mask's area, about that on a face mask). The ratio is
    clipped to [1 / max_gain, max_gain].
    """
    m = _check(src, dst, mask)
    if blur is None:
        blur = 0.25 * float(np.sqrt((m > 0.5).sum()))
    k = max(3, int(round(blur)) | 1)  # odd kernel size
    m3 = m[..., None]

    def local_mean(x: np.ndarray) -> np.ndarray:
        num = cv2.GaussianBlur(x.astype(np.float32) * m3, (k, k), 0)
        den = cv2.GaussianBlur(m, (k, k), 0)[..., None]
        return num / np.maximum(den, 1e-3)

    ratio = np.clip(local_mean(dst) / np.maximum(local_mean(src), 1.0), 1.0 / max_gain, max_gain)
    return np.clip(np.round(src.astype(np.float32) * ratio), 0, 255).astype(np.uint8)


def _match_histograms(src: np.ndarray, dst: np.ndarray, m: np.ndarray) -> np.ndarray:
    out = np.empty_like(src)
    levels = np.arange(256)
    for c in range(3):
        cdf_s = np.cumsum(np.bincount(src[..., c][m], minlength=256)).astype(np.float64)
        cdf_d = np.cumsum(np.bincount(dst[..., c][m], minlength=256)).astype(np.float64)
        cdf_s /= cdf_s[-1]
        cdf_d /= cdf_d[-1]
        # Each source level goes to the destination level at the same quantile.
        lut = np.interp(cdf_s, cdf_d, levels)
        out[..., c] = np.round(lut).astype(np.uint8)[src[..., c]]
    return out


def default_radius(mask: np.ndarray) -> int:
    """A feather radius that suits the region: 5% of the square root of its area, at least 1 pixel."""
    area = float((np.asarray(mask, np.float32) > 0.5).sum())
    return max(1, int(round(0.05 * np.sqrt(area))))


def feather_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """A soft alpha (H, W) float32 that falls from 1 to 0 over the `radius` pixels inside the mask's edge.

    The region is eroded by `radius` and then blurred by a kernel of the same half-width, so the ramp ends at the
    mask's edge; it is exactly 0 outside the mask, so nothing beyond it leaks into the result. The image border
    does not count as an edge.
    """
    m = (np.asarray(mask, np.float32) > 0.5).astype(np.float32)
    if radius <= 0:
        return m
    k = 2 * int(radius) + 1
    # erode's default border value never erodes from the image border.
    soft = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    soft = cv2.GaussianBlur(soft, (k, k), sigmaX=radius / 2.0, borderType=cv2.BORDER_REPLICATE)
    # The blur's square support reaches a little past the round erosion diagonally: cut that tail off.
    return soft * m


def feather_blend(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, radius: int | None = None) -> np.ndarray:
    """Alpha-blend `src` over `dst` with the mask feathered inwards by `radius` px (default: :func:`default_radius`)."""
    m = _check(src, dst, mask)
    alpha = feather_mask(m, default_radius(m) if radius is None else radius)[..., None]
    out = alpha * src.astype(np.float32) + (1.0 - alpha) * dst.astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def seamless_clone(src: np.ndarray, dst: np.ndarray, mask: np.ndarray,
                   fallback_radius: int | None = None) -> np.ndarray:
    """Poisson-blend `src` into `dst` inside `mask` (``cv2.seamlessClone``, NORMAL_CLONE).

    `src` is already aligned with `dst` (same frame); pixels outside the mask are `dst`'s. Masks touching the image
    border work (the images are padded first, since OpenCV clears the mask's outer pixel ring). If OpenCV fails,
    it logs a warning and falls back to :func:`feather_blend` with `fallback_radius`.
    """
    m = _check(src, dst, mask) > 0.5
    if not m.any():
        return dst.copy()
    pad = 2
    src_p = cv2.copyMakeBorder(src, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    dst_p = cv2.copyMakeBorder(dst, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    m_p = cv2.copyMakeBorder(m.astype(np.uint8) * 255, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    x, y, w, h = cv2.boundingRect(m_p)
    # OpenCV pastes the mask's bounding box centred on `center` (integer halves): this centre puts it back in place.
    center = (x + w // 2, y + h // 2)
    try:
        out = cv2.seamlessClone(src_p, dst_p, m_p, center, cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    except cv2.error as err:
        log.warning("seamless clone failed (%s); falling back to a feathered blend", str(err).strip().splitlines()[-1])
        return feather_blend(src, dst, m, fallback_radius)
    out = out.copy()
    out[~m] = dst[~m]
    return out
