import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.faces import masks
from faceswaplab.faces.alignment import align_face
from faceswaplab.faces.backends import DlibBackend, FaceEncoder
from faceswaplab.images import to_image, to_tensor
from faceswaplab.methods import FaceSwapMethod, preview_grid
from faceswaplab.methods.landmark_warp import LandmarkWarp


@pytest.fixture(scope="module")
def dlib_backend():
    return DlibBackend(detector="hog", upsample=1)


def _largest(backend, image):
    faces = backend.faces(image)
    assert faces, "dlib found no face"
    return max(faces, key=lambda f: f.area)


def _load(path, max_side=480):
    image = np.asarray(Image.open(path).convert("RGB"))
    s = max_side / max(image.shape[:2])
    return cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else image


def _interocular(lm):
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def test_real_faces_swap_keeps_target_geometry_and_takes_source_identity(astronaut, media, dlib_backend):
    """Astronaut onto a photo of Obama; landmarks are detected by swap() itself with real dlib."""
    size = 192
    src, _, _ = align_face(astronaut, _largest(dlib_backend, astronaut).landmarks, size)
    photo = _load(media / "photos" / "obama" / "fr_obama.jpg")
    tgt, _, _ = align_face(photo, _largest(dlib_backend, photo).landmarks, size)

    out = LandmarkWarp().swap(to_tensor(tgt[None]), to_tensor(src[None]))
    assert out.shape == (1, 3, size, size) and out.dtype == torch.float32
    result = to_image(out)[0]

    f_out, f_tgt, f_src = (_largest(dlib_backend, x) for x in (result, tgt, src))
    # Pose and expression are the target's: dlib finds the output's landmarks where the target's are.
    err = np.linalg.norm(f_out.landmarks - f_tgt.landmarks, axis=1).mean() / _interocular(f_tgt.landmarks)
    assert err < 0.08, f"mean landmark error {err:.3f} of the inter-ocular distance"
    # Identity moves towards the source (dlib's face-recognition descriptor).
    enc = FaceEncoder()
    e_out, e_tgt, e_src = enc(result, f_out), enc(tgt, f_tgt), enc(src, f_src)
    assert np.linalg.norm(e_out - e_src) < np.linalg.norm(e_out - e_tgt)
    assert np.linalg.norm(e_out - e_src) < np.linalg.norm(e_tgt - e_src)
    # Outside the target's face mask the photo is untouched.
    mask = masks.face_hull_mask_np(f_tgt.landmarks, size)
    outside = cv2.dilate(mask, np.ones((5, 5), np.uint8)) == 0
    assert np.abs(result[outside].astype(int) - tgt[outside]).max() <= 1


@pytest.fixture(scope="module")
def synthetic_pairs():
    """Targets of identity 0 and sources of identity 1 at moderate poses and varied expressions, 96 px."""
    faces = SyntheticFaces(seed=0)
    targets = [faces.render(0, 96, pose=(10, 0, 5), expression=(0.5, 0, 0, 0), background=(40, 120, 60)),
               faces.render(0, 96, pose=(-12, 5, -4), expression=(0, 0.8, 0, 0), background=(30, 60, 160))]
    sources = [faces.render(1, 96, pose=(0, 0, 0), background=(200, 60, 60)),
               faces.render(1, 96, pose=(8, -5, 3), expression=(0, 0, 0.5, 0), background=(220, 200, 40))]
    stack = lambda rs, k: np.stack([getattr(r, k) for r in rs])  # noqa: E731
    return {
        "target": to_tensor(stack(targets, "image")), "source": to_tensor(stack(sources, "image")),
        "target_landmarks": torch.from_numpy(stack(targets, "landmarks")),
        "source_landmarks": torch.from_numpy(stack(sources, "landmarks")),
    }


@pytest.mark.parametrize("blend, color", [("seamless", "lab_meanstd"), ("feather", "histogram"), ("feather", "none")])
def test_synthetic_swap_changes_the_face_and_keeps_the_background(synthetic_pairs, blend, color):
    p = synthetic_pairs
    method = LandmarkWarp(blend=blend, color=color)
    out = method.swap(p["target"], p["source"], target_landmarks=p["target_landmarks"],
                      source_landmarks=p["source_landmarks"])
    assert out.shape == p["target"].shape and out.dtype == p["target"].dtype
    assert out.min() >= -1 and out.max() <= 1
    mask = masks.face_hull_mask(p["target_landmarks"], 96)  # (B, 1, H, W)
    diff = (out - p["target"]).abs().mean(1, keepdim=True)
    outside = torch.nn.functional.max_pool2d(mask, 5, 1, 2) == 0
    assert diff[outside].max() <= 1 / 127.5 + 1e-6  # background kept (up to uint8 rounding)
    inner = -torch.nn.functional.max_pool2d(-mask, 9, 1, 4) > 0.5
    assert diff[inner].mean() > 0.05  # the face changed (the background: < 0.008)


def test_swap_with_itself_is_nearly_the_identity(synthetic_pairs):
    p = synthetic_pairs
    t, lm = p["target"], p["target_landmarks"]
    out = LandmarkWarp(blend="feather").swap(t, t, target_landmarks=lm, source_landmarks=lm)
    assert (out - t).abs().max() <= 1 / 127.5 + 1e-6


def test_missing_source_and_undetectable_faces_raise(synthetic_pairs):
    method = LandmarkWarp()
    t = synthetic_pairs["target"]
    with pytest.raises(ValueError, match="source image"):
        method.swap(t)
    blank = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match="no face found by dlib in target image 0"):
        method.swap(blank, blank)
    with pytest.raises(ValueError, match="target_landmarks must be"):
        method.swap(t, t, target_landmarks=torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="blend must be one of"):
        LandmarkWarp(blend="poisson")


def test_preview_grid_rows_are_source_target_swap(synthetic_pairs):
    p = synthetic_pairs
    batch = {"image_A": p["target"], "landmarks_A": p["target_landmarks"],
             "image_B": p["source"], "landmarks_B": p["source_landmarks"]}
    method = LandmarkWarp()
    assert isinstance(method, FaceSwapMethod) and not method.trainable
    grid = method.preview(batch, max_pairs=2)
    n, size, pad = 4, 96, 2  # two pairs per direction
    assert grid.shape == (3, n * (size + pad) + pad, 3 * (size + pad) + pad)
    # Row 0 (A to B): the source is B's first image, the target A's first.
    np.testing.assert_allclose(grid[:, pad:pad + size, pad:pad + size], p["source"][0], atol=1e-6)
    np.testing.assert_allclose(grid[:, pad:pad + size, 2 * pad + size:2 * pad + 2 * size], p["target"][0], atol=1e-6)
    # The grid helper stacks the three columns.
    g = preview_grid(p["source"], p["target"], p["target"])
    assert g.shape == (3, 2 * (size + pad) + pad, 3 * (size + pad) + pad)


def test_landmark_warp_keeps_the_open_target_mouth():
    from scipy.ndimage import binary_erosion

    from faceswaplab.methods.landmark_warp import mouth_interior

    faces_ = SyntheticFaces(seed=0)
    target = faces_.render(0, 128, expression=(1.0, 0, 0, 0), background=(40, 120, 60))  # mouth wide open
    source = faces_.render(1, 128, expression=(0.0, 0, 0, 0), background=(200, 60, 60))  # mouth closed
    inside = binary_erosion(mouth_interior(target.landmarks, (128, 128)) > 0.5, iterations=2)
    assert inside.sum() > 30  # the open mouth is a real region
    swaps = {keep: LandmarkWarp(keep_mouth=keep).swap_image(target.image, source.image, target.landmarks,
                                                            source.landmarks) for keep in (True, False)}
    diff = {k: np.abs(v.astype(int) - target.image)[inside].mean() for k, v in swaps.items()}
    assert diff[True] <= 2 < diff[False], diff  # kept: the target's teeth and tongue; not: stretched source lips
