import logging

import cv2
import numpy as np
import pytest

from faceswaplab.faces import blending as B


@pytest.fixture(scope="module")
def pair(astronaut):
    """Two 96 px crops of a real face, shifted against each other, one with a strong blue cast; an elliptic face
    mask in their middle."""
    src = cv2.resize(astronaut[60:220, 160:320], (96, 96), interpolation=cv2.INTER_AREA)
    dst = cv2.resize(astronaut[70:230, 150:310], (96, 96), interpolation=cv2.INTER_AREA)
    dst = np.clip(dst.astype(int) * [0.7, 0.85, 1.1] + [0, 10, 30], 0, 255).astype(np.uint8)
    mask = np.zeros((96, 96), np.float32)
    cv2.ellipse(mask, (48, 52), (22, 28), 0, 0, 360, 1.0, -1)
    return src, dst, mask


def _masked_mean(image, mask):
    return image[mask > 0.5].astype(np.float64).mean(0)


@pytest.mark.parametrize("mode, tol", [("lab_meanstd", 3.0), ("rgb_meanstd", 2.5), ("histogram", 1.5)])
def test_color_transfer_moves_the_masked_mean_to_the_target(pair, mode, tol):
    src, dst, mask = pair
    before = np.abs(_masked_mean(src, mask) - _masked_mean(dst, mask))
    out = B.color_transfer(src, dst, mask, mode=mode)
    after = np.abs(_masked_mean(out, mask) - _masked_mean(dst, mask))
    assert out.dtype == np.uint8 and out.shape == src.shape
    assert before.max() > 20  # the test pair really differs in colour
    assert after.max() < tol, (mode, before, after)


def test_color_transfer_meanstd_matches_spread_and_keeps_structure(pair):
    src, dst, mask = pair
    out = B.color_transfer(src, dst, mask, mode="rgb_meanstd")
    m = mask > 0.5
    np.testing.assert_allclose(out[m].std(0), dst[m].std(0), rtol=0.15)  # (up to clipping at 0 and 255)
    # An affine per-channel map: the result is correlated with the source (perfectly, but for clipping).
    for c in range(3):
        assert np.corrcoef(out[m][:, c], src[m][:, c])[0, 1] > 0.98


def test_histogram_transfer_matches_quantiles(pair):
    src, dst, mask = pair
    out = B.color_transfer(src, dst, mask, mode="histogram")
    m = mask > 0.5
    q = [10, 25, 50, 75, 90]
    diff = np.abs(np.percentile(out[m], q, axis=0) - np.percentile(dst[m], q, axis=0))
    assert diff.max() <= 3
    # The mean-std transfer does not match the shape of the distribution; the histogram transfer does.
    meanstd = B.color_transfer(src, dst, mask, mode="rgb_meanstd")
    assert np.abs(np.percentile(meanstd[m], q, axis=0) - np.percentile(dst[m], q, axis=0)).max() > 10


def test_color_transfer_none_and_bad_mode(pair):
    src, dst, mask = pair
    np.testing.assert_array_equal(B.color_transfer(src, dst, mask, mode="none"), src)
    with pytest.raises(ValueError, match="unknown colour transfer mode"):
        B.color_transfer(src, dst, mask, mode="xyz")
    with pytest.raises(ValueError, match="does not match"):
        B.color_transfer(src, dst, mask[:10])


@pytest.mark.parametrize("blend", ["seamless", "feather"])
def test_blends_leave_pixels_outside_the_mask_unchanged(pair, blend):
    src, dst, mask = pair
    out = B.seamless_clone(src, dst, mask) if blend == "seamless" else B.feather_blend(src, dst, mask, radius=4)
    outside = cv2.dilate(mask, np.ones((3, 3), np.uint8)) == 0
    np.testing.assert_array_equal(out[outside], dst[outside])
    inside = cv2.erode(mask, np.ones((15, 15), np.uint8)) > 0
    assert np.abs(out[inside].astype(int) - dst[inside]).mean() > 20  # the inside really changed


def test_feather_blend_is_the_source_deep_inside_and_soft_at_the_edge(pair):
    src, dst, mask = pair
    r = 5
    out = B.feather_blend(src, dst, mask, radius=r)
    deep = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * r + 3, 4 * r + 3))) > 0
    np.testing.assert_array_equal(out[deep], src[deep])
    alpha = B.feather_mask(mask, r)
    edge = (alpha > 0.05) & (alpha < 0.95)
    assert edge.sum() > 0 and alpha[mask < 0.5].max() == 0.0


def test_seamless_clone_keeps_source_gradients(pair):
    src, dst, mask = pair
    out = B.seamless_clone(src, dst, mask).astype(np.float32)
    inside = cv2.erode(mask, np.ones((5, 5), np.uint8)) > 0

    def grad(x):
        g = cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2GRAY)
        return np.concatenate([cv2.Sobel(g, cv2.CV_32F, 1, 0)[inside], cv2.Sobel(g, cv2.CV_32F, 0, 1)[inside]])

    assert np.corrcoef(grad(out), grad(src))[0, 1] > 0.9
    assert np.corrcoef(grad(out), grad(dst))[0, 1] < 0.5


@pytest.mark.parametrize("blend", ["seamless", "feather"])
def test_masks_touching_the_border(pair, blend):
    src, dst, _ = pair
    mask = np.zeros((96, 96), np.float32)
    mask[:50, :60] = 1.0  # touches the top and left edges
    out = B.seamless_clone(src, dst, mask) if blend == "seamless" else B.feather_blend(src, dst, mask, radius=3)
    np.testing.assert_array_equal(out[51:], dst[51:])
    np.testing.assert_array_equal(out[:, 61:], dst[:, 61:])
    assert np.abs(out[5:40, 5:50].astype(int) - dst[5:40, 5:50]).mean() > 20
    if blend == "feather":
        # The image border is no edge: along it, inside the mask, the result is the source.
        np.testing.assert_array_equal(out[0, :50], src[0, :50])
    full = B.seamless_clone(src, dst, np.ones((96, 96), np.float32))
    assert full.shape == dst.shape


def test_seamless_clone_falls_back_to_feather_when_opencv_fails(pair, caplog):
    src, dst, _ = pair
    mask = np.zeros((96, 96), np.float32)
    mask[40, 40] = 1.0  # a one-pixel region: OpenCV's Poisson solver rejects it
    with caplog.at_level(logging.WARNING, logger="faceswaplab.faces.blending"):
        out = B.seamless_clone(src, dst, mask)
    assert "falling back" in caplog.text
    np.testing.assert_array_equal(out, B.feather_blend(src, dst, mask))


def test_blur_ratio_correction_follows_local_lighting():
    """``src * blur(dst) / blur(src)`` moves a shadow across the face, which a global transfer cannot."""
    from faceswaplab.data.synthetic import SyntheticFaces

    face = SyntheticFaces(seed=0).render(0, 96).image
    shade = np.linspace(0.45, 1.0, 96, dtype=np.float32)[None, :, None]  # dark on the left, bright on the right
    dst = np.clip(face * shade, 0, 255).astype(np.uint8)
    mask = np.zeros((96, 96), np.float32)
    mask[16:80, 16:80] = 1
    inner = slice(24, 72)
    err = {mode: np.abs(B.color_transfer(face, dst, mask, mode=mode, blur=15).astype(int)
                        - dst)[inner, inner].mean() for mode in ("blur_ratio", "lab_meanstd")}
    assert err["blur_ratio"] < 0.5 * err["lab_meanstd"], err
