import hashlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from faceswaplab.data import synthetic
from faceswaplab.data.synthetic import FaceRender, SyntheticFaces, neutral_identity
from faceswaplab.faces import template as T


@pytest.fixture(scope="module")
def faces() -> SyntheticFaces:
    return SyntheticFaces(seed=0)


def _same(a: FaceRender, b: FaceRender) -> bool:
    return (a.image.tobytes() == b.image.tobytes() and a.mask.tobytes() == b.mask.tobytes()
            and a.landmarks.tobytes() == b.landmarks.tobytes())


def test_sample_is_deterministic_and_order_independent(faces):
    first = faces.sample(3, 17, 64)
    for i in range(4):  # other renders in between must not change anything
        faces.sample(i, i, 48)
    assert _same(first, SyntheticFaces(seed=0).sample(3, 17, 64))
    assert not _same(first, SyntheticFaces(seed=1).sample(3, 17, 64))
    assert not _same(first, faces.sample(3, 18, 64))
    assert faces.identity(5) == SyntheticFaces(seed=0, num_identities=20).identity(5)
    assert faces.identity(5) != SyntheticFaces(seed=1).identity(5)


def test_sample_is_identical_in_another_process():
    code = ("import hashlib; from faceswaplab.data.synthetic import SyntheticFaces; "
            "r = SyntheticFaces(seed=3).sample(2, 41, 64); "
            "print(hashlib.sha256(r.image.tobytes() + r.mask.tobytes() + r.landmarks.tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    r = SyntheticFaces(seed=3).sample(2, 41, 64)
    assert out == hashlib.sha256(r.image.tobytes() + r.mask.tobytes() + r.landmarks.tobytes()).hexdigest()


@pytest.mark.parametrize("size", [32, 48, 64, 100, 128, 256, 512])
def test_shapes_and_dtypes(faces, size):
    r = faces.sample(1, 2, size)
    assert r.image.shape == (size, size, 3) and r.image.dtype == np.uint8
    assert r.landmarks.shape == (68, 2) and r.landmarks.dtype == np.float32
    assert r.mask.shape == (size, size) and r.mask.dtype == np.float32
    assert 0.0 <= r.mask.min() and r.mask.max() <= 1.0
    assert r.pose.shape == (3,) and r.pose.dtype == np.float32
    assert r.expression.shape == (4,) and r.expression.dtype == np.float32
    assert r.identity == 1
    assert np.all((r.landmarks > 0) & (r.landmarks < size - 1))
    assert r.image.std() > 10  # something was drawn


def test_bad_arguments(faces):
    with pytest.raises(ValueError, match="size"):
        faces.render(0, 8)
    with pytest.raises(ValueError, match="identity"):
        faces.identity(-1)
    with pytest.raises(ValueError, match="index"):
        faces.sample(0, -1)
    with pytest.raises(ValueError, match="background"):
        faces.render(0, 64, background=np.zeros((32, 32, 3), np.uint8))


def test_any_identity_index_works():
    faces = SyntheticFaces(seed=0, num_identities=3)
    r = faces.sample(1000, 0, 32)
    assert r.identity == 1000
    # the first identities cover distinct hair styles and skin tones
    ids = [faces.identity(i) for i in range(len(synthetic.HAIR_STYLES))]
    assert len({i.hair_style for i in ids}) == len(synthetic.HAIR_STYLES)
    assert len({i.skin for i in ids}) == len(ids)


@pytest.mark.parametrize("size", [64, 128, 200])
def test_frontal_neutral_mean_face_lands_on_canonical_landmarks(faces, size):
    r = faces.render(neutral_identity(faces.identity(2)), size)
    np.testing.assert_allclose(r.landmarks, T.canonical_landmarks(size), atol=1e-3)
    # scale and shift jitter moves them about the crop centre
    j = faces.render(neutral_identity(faces.identity(2)), size, scale=1.05, shift=(0.02, -0.03))
    c = (size - 1) / 2
    expected = c + 1.05 * (T.canonical_landmarks(size) - c) + np.array([0.02, -0.03]) * size
    np.testing.assert_allclose(j.landmarks, expected, atol=1e-3)


def test_landmarks_sit_on_drawn_features(faces):
    for i in range(8):
        r = faces.render(i, 128, background=(0, 255, 0))
        img = r.image.astype(np.float64)
        lm = r.landmarks
        # skin reference: the cheek, between the eye, the nose wing and the jaw
        cheek = np.round(0.4 * lm[41] + 0.3 * lm[31] + 0.3 * lm[3]).astype(int)
        skin = img[cheek[1], cheek[0]]
        for eye in (T.EYE_LEFT, T.EYE_RIGHT):
            x, y = np.round(lm[eye].mean(0)).astype(int)
            assert np.abs(img[y, x] - skin).sum() > 60, f"identity {i}: eye centre looks like skin"
        x, y = np.round(lm[T.MOUTH_OUTER[9]]).astype(int)  # lower lip, just above its bottom edge
        y -= 2
        assert np.abs(img[y, x] - skin).sum() > 25, f"identity {i}: lower lip looks like skin"
        for k in T.NOSE:
            x, y = np.round(lm[k]).astype(int)
            assert r.mask[y, x] > 0.99, f"identity {i}: nose point {k} outside the mask"
        assert r.mask[[0, 0, -1, -1], [0, -1, 0, -1]].max() == 0.0


def test_mask_excludes_hair_and_background(faces):
    styles = [faces.identity(i).hair_style for i in range(8)]
    i = styles.index("bangs")
    r = faces.render(i, 128)

    def forehead(lm):  # above the inner brow ends, under a fringe if there is one
        return np.round(lm[[21, 22]].mean(0) - [0, 0.2 * (lm[8, 1] - lm[27, 1])]).astype(int)

    x, y = forehead(r.landmarks)
    assert r.mask[y, x] == 0.0
    bald = faces.render(styles.index("bald"), 128)
    x, y = forehead(bald.landmarks)
    assert bald.mask[y, x] == 1.0  # a bald forehead is skin
    # a background image shows wherever nothing was drawn
    bg = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    r = faces.render(i, 128, background=bg)
    np.testing.assert_array_equal(r.image[:4, :4], bg[:4, :4])


def test_expression_basis_matches_the_model(faces):
    rng = np.random.default_rng(0)
    for i in range(3):
        idn = faces.identity(i)
        for e in rng.uniform(size=(5, 4)):
            np.testing.assert_allclose(synthetic._expressive_face(idn, e), synthetic._expression_model(idn, e),
                                       atol=1e-9)


def test_landmarks_follow_pose(faces):
    base = faces.render(0, 128).landmarks
    right = faces.render(0, 128, pose=(30, 0, 0)).landmarks
    left = faces.render(0, 128, pose=(-30, 0, 0)).landmarks
    up = faces.render(0, 128, pose=(0, 20, 0)).landmarks
    tilt = faces.render(0, 128, pose=(0, 0, 15)).landmarks
    nose = 30
    assert right[nose, 0] > base[nose, 0] + 5 and left[nose, 0] < base[nose, 0] - 5
    # at positive yaw the face turns to the image right: its left half (image right) foreshortens
    width = lambda lm: (lm[45, 0] - lm[42, 0]) / (lm[39, 0] - lm[36, 0])  # noqa: E731
    assert width(right) < 0.9 < 1.1 < width(left)
    # positive pitch: the nose tip moves up relative to the eyes
    assert (up[nose, 1] - up[T.EYES, 1].mean()) < (base[nose, 1] - base[T.EYES, 1].mean()) - 3
    # positive roll: clockwise in the image, the right eye goes down
    assert tilt[45, 1] > tilt[36, 1] + 5


def test_expression_moves_landmarks(faces):
    neutral = faces.render(4, 128)
    opened = faces.render(4, 128, expression=(1, 0, 0, 0))
    gap = lambda r: r.landmarks[66, 1] - r.landmarks[62, 1]  # noqa: E731
    assert gap(neutral) < 2 and gap(opened) > 8
    # an open mouth shows the dark interior between the inner lips
    x, y = np.round(opened.landmarks[[62, 66]].mean(0)).astype(int)
    assert opened.image[y, x].astype(int).sum() < neutral.image[y, x].astype(int).sum() - 60
    smile = faces.render(4, 128, expression=(0, 1, 0, 0)).landmarks
    corners = lambda lm: lm[[48, 54], 1].mean() - lm[[51, 57], 1].mean()  # noqa: E731
    assert corners(smile) < corners(neutral.landmarks) - 3
    raised = faces.render(4, 128, expression=(0, 0, 1, 0)).landmarks
    assert raised[T.BROWS, 1].mean() < neutral.landmarks[T.BROWS, 1].mean() - 3
    blink = faces.render(4, 128, expression=(0, 0, 0, 1))
    lid = lambda lm: np.abs(lm[[37, 38, 43, 44], 1] - lm[[41, 40, 47, 46], 1]).max()  # noqa: E731
    assert lid(neutral.landmarks) > 2.5 and lid(blink.landmarks) < 0.5
    # closed eyes show lids, not the white of the eye
    x, y = np.round(blink.landmarks[T.EYE_LEFT].mean(0)).astype(int)
    assert blink.image[y - 1:y + 2, x - 1:x + 2].min(axis=(0, 1)).max() < 225


def test_sampled_variation_covers_the_ranges(faces):
    rs = [faces.sample(i % 8, i, 32) for i in range(160)]
    pose = np.stack([r.pose for r in rs])
    expr = np.stack([r.expression for r in rs])
    assert np.all(np.abs(pose) <= [35, 20, 15])
    assert pose[:, 0].min() < -30 and pose[:, 0].max() > 30
    assert pose[:, 1].min() < -15 and pose[:, 1].max() > 15
    assert pose[:, 2].min() < -10 and pose[:, 2].max() > 10
    assert expr.min() >= 0 and expr.max() <= 1
    assert np.all((expr > 0.5).mean(0) > 0.1)  # every expression shows up often
    narrow = faces.sample(0, 3, 32, max_yaw=5, max_pitch=0, max_roll=0)
    assert abs(narrow.pose[0]) <= 5 and narrow.pose[1] == 0 and narrow.pose[2] == 0
    # backgrounds vary
    corners = np.stack([r.image[0, 0] for r in rs[:20]]).astype(float)
    assert corners.std(0).mean() > 20


def _appearance_features(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) uint8 -> (N, 256): 8x8 downsampled pixels and a coarse colour histogram."""
    x = images.astype(np.float32) / 255.0
    small = x.reshape(len(x), 8, 4, 8, 4, 3).mean((2, 4)).reshape(len(x), -1)
    q = np.minimum((x * 4).astype(int), 3)
    bins = q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]
    hist = np.stack([np.bincount(b.ravel(), minlength=64) for b in bins]) / (32 * 32)
    return np.concatenate([small, np.sqrt(hist)], 1)


def test_identities_are_classifiable_across_pose_and_expression():
    """A linear classifier fit on a few renders recognises fresh ones (unseen poses, expressions, backgrounds)."""
    faces = SyntheticFaces(seed=0, num_identities=8)

    def renders(indices):
        x = np.stack([faces.sample(i, k, 32).image for i in range(8) for k in indices])
        return x, np.repeat(np.arange(8), len(indices))

    x_train, y_train = renders(range(40))
    x_test, y_test = renders(range(10_000, 10_020))
    # ridge regression onto one-hot labels, with mirrored copies of the training images
    f_train = _appearance_features(np.concatenate([x_train, x_train[:, :, ::-1]]))
    y_train = np.concatenate([y_train, y_train])
    mean, std = f_train.mean(0), f_train.std(0) + 1e-3
    a = (f_train - mean) / std
    w = np.linalg.solve(a.T @ a + 30.0 * np.eye(a.shape[1]), a.T @ np.eye(8)[y_train])
    pred = (((_appearance_features(x_test) - mean) / std) @ w).argmax(1)
    acc = (pred == y_test).mean()
    assert acc >= 0.95, f"identity accuracy {acc:.3f}"


def test_grid_command_writes_png(tmp_path):
    out = tmp_path / "grid.png"
    synthetic.main(["--out", str(out), "--identities", "3", "--columns", "4", "--size", "40", "--seed", "2"])
    img = np.asarray(Image.open(out))
    assert img.shape == (3 * 40, 4 * 40, 3) and img.dtype == np.uint8
    # row i starts with identity i's frontal neutral render
    ref = SyntheticFaces(seed=2).render(1, 40, background=(235, 235, 235)).image
    np.testing.assert_array_equal(img[40:80, :40], ref)
