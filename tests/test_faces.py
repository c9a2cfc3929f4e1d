import time

import cv2
import numpy as np
import pytest

from faceswaplab.faces import template
from faceswaplab.faces.backends import (
    DlibBackend,
    Face,
    FaceBackend,
    FaceEncoder,
    FanBackend,
    MissingWeightsError,
    MtcnnBackend,
    dlib_model_path,
    fan_weight_files,
)
from faceswaplab.faces.pipeline import find_faces, make_backend
from faceswaplab.io import read_image

# Where dlib's HOG detector puts the astronaut's face in skimage.data.astronaut() (about 90 px wide).
ASTRONAUT_FACE_CENTRE = np.array([221.0, 123.0])


@pytest.fixture(scope="module")
def dlib_backend():
    return DlibBackend("hog", upsample=1)


def _largest(faces):
    return max(faces, key=lambda f: f.area)


def test_dlib_hog_finds_the_face_with_landmarks(dlib_backend, astronaut):
    faces = dlib_backend.faces(astronaut)
    assert faces and all(isinstance(f, Face) for f in faces)
    face = _largest(faces)
    assert face.landmarks.shape == (68, 2)
    assert 70 < face.width < 120 and face.score > 0.5
    centre = (face.box[:2] + face.box[2:]) / 2
    assert np.linalg.norm(centre - ASTRONAUT_FACE_CENTRE) < 15
    # Anatomy: the eyes lie above the nose tip, which lies above the mouth; the subject's right eye is left.
    lm = face.landmarks
    eyes_y = lm[template.EYES, 1].mean()
    assert eyes_y < lm[30, 1] < lm[template.MOUTH, 1].mean()
    assert lm[template.EYE_LEFT, 0].mean() < lm[template.EYE_RIGHT, 0].mean()


def test_dlib_cnn_detector_agrees_with_hog(dlib_backend, astronaut):
    cnn = DlibBackend("cnn", upsample=0)
    head = np.ascontiguousarray(astronaut[:280, 90:350])  # the CNN is slow on CPU: keep the image small
    hog = _largest(dlib_backend.faces(head))
    faces = cnn.faces(head)
    assert faces
    face = _largest(faces)
    assert np.abs(face.landmarks - hog.landmarks)[template.INNER].mean() < 4.0


def test_mtcnn_boxes_give_landmarks_close_to_dlib(dlib_backend, astronaut):
    mtcnn = MtcnnBackend()
    face = _largest(mtcnn.faces(astronaut))
    ref = _largest(dlib_backend.faces(astronaut))
    assert face.score > 0.9
    assert np.abs(face.landmarks - ref.landmarks)[template.INNER].mean() < 4.0


def test_backends_come_from_hydra_configs(astronaut):
    backend = make_backend("dlib", detector="hog", upsample=0)
    assert isinstance(backend, DlibBackend) and backend.upsample == 0
    assert isinstance(make_backend({"_target_": "faceswaplab.faces.backends.DlibBackend"}), FaceBackend)
    with pytest.raises(ValueError, match="available: .*dlib"):
        make_backend("nonexistent")


def test_fan_without_weights_fails_clearly_and_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    files = fan_weight_files("sfd")
    assert [p.parent for _, p in files] == [tmp_path / "hub" / "checkpoints"] * 2
    start = time.monotonic()
    with pytest.raises(MissingWeightsError) as err:
        FanBackend(detector="sfd")
    msg = str(err.value)
    for url, path in files:
        assert str(path) in msg and url in msg
    assert "TORCH_HOME" in msg
    assert time.monotonic() - start < 5  # failed up front, no download attempt timing out
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing downloaded, not even partly
    # Through the prepare config as well (the dlib-box variant needs only the landmark network).
    with pytest.raises(MissingWeightsError, match="2DFAN4"):
        make_backend("fan", detector="dlib")


def test_dlib_weights_ship_with_the_package():
    for name in ("shape_predictor_68_face_landmarks.dat", "mmod_human_face_detector.dat",
                 "dlib_face_recognition_resnet_model_v1.dat"):
        assert dlib_model_path(name).stat().st_size > 100_000
    with pytest.raises(MissingWeightsError, match="missing"):
        dlib_model_path("no_such_model.dat")


def test_face_descriptor_separates_people(media, dlib_backend):
    enc = FaceEncoder()

    def descriptor(path):
        image = read_image(path)
        return enc(image, _largest(find_faces(dlib_backend, image)))

    obama = [descriptor(media / "photos/obama" / n) for n in ("fr_obama.jpg", "fr_obama2.jpg")]
    biden = descriptor(media / "photos/biden/fr_biden.jpg")
    assert obama[0].shape == (128,)
    assert np.linalg.norm(obama[0] - obama[1]) < 0.6 < np.linalg.norm(obama[0] - biden)


def test_huge_image_detected_downscaled_with_full_resolution_landmarks(dlib_backend, astronaut):
    # An 8K frame with the astronaut enlarged 3x (face ~270 px) away from the corner.
    big = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    frame = np.full((4320, 7680, 3), 90, np.uint8)
    x0, y0 = 4000, 1500
    frame[y0:y0 + big.shape[0], x0:x0 + big.shape[1]] = big
    small_ref = _largest(dlib_backend.faces(astronaut))
    t = time.monotonic()
    faces = find_faces(dlib_backend, frame, detect_size=1024)
    assert time.monotonic() - t < 10
    face = _largest(faces)
    expected = (small_ref.landmarks + 0.5) * 3 - 0.5 + [x0, y0]
    # Landmarks are placed at full resolution: within a few pixels of the enlarged photo's (not ~7 px steps).
    assert np.abs(face.landmarks - expected)[template.INNER].mean() < 6.0
    assert face.box[0] > x0 and face.box[2] < x0 + big.shape[1]


def test_face_cut_by_the_border_is_found_by_padding(dlib_backend, astronaut):
    full = _largest(dlib_backend.faces(astronaut))
    cut = np.ascontiguousarray(astronaut[93:300, 179:400])  # the top of the face box lies outside
    assert find_faces(dlib_backend, cut, pad=0) == []
    faces = find_faces(dlib_backend, cut, pad="auto")
    assert len(faces) == 1
    # Landmarks come back in the coordinates of the unpadded image.
    assert np.abs(faces[0].landmarks - (full.landmarks - [179, 93]))[template.INNER].mean() < 3.0


def test_padding_keeps_coordinates_on_tight_crops(media, dlib_backend):
    path = sorted((media / "photos/john_simm").glob("*.jpg"))[0]
    image = read_image(path)
    assert image.shape[:2] == (150, 150)
    plain = _largest(find_faces(dlib_backend, image, pad=0))
    padded = _largest(find_faces(dlib_backend, image, pad=0.5))
    assert np.abs(plain.landmarks - padded.landmarks)[template.INNER].mean() < 3.0


@pytest.mark.slow  # face-alignment JIT-compiles its heatmap decoding on first use (tens of seconds)
def test_fan_backend_loads_weights_from_the_torch_cache(tmp_path, monkeypatch, astronaut):
    """The real FAN code path, with randomly initialised weights standing in for the unobtainable download."""
    import torch
    from face_alignment.models import FAN

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ((_, path),) = fan_weight_files("dlib")
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), path)
    backend = FanBackend(detector="dlib")
    faces = backend.faces(astronaut)
    ref = _largest(DlibBackend().faces(astronaut))
    face = _largest(faces)
    np.testing.assert_allclose(face.box, ref.box)
    assert face.landmarks.shape == (68, 2) and np.isfinite(face.landmarks).all()
    # Random weights give arbitrary points, but FAN decodes them inside the face's crop window.
    lo, hi = ref.box[:2] - ref.width, ref.box[2:] + ref.width
    assert ((face.landmarks >= lo) & (face.landmarks <= hi)).all()
