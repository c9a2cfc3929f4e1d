"""Face detection + 68-point landmark backends behind one interface, and dlib's face-recognition descriptor.

Backends (instantiated from ``conf/backend/<name>.yaml`` through Hydra's ``_target_``):

* :class:`DlibBackend` (default): dlib's HOG (``get_frontal_face_detector``) or CNN (MMOD) detector and its
  68-point ``shape_predictor``; all weights ship in the ``face_recognition_models`` package.
* :class:`MtcnnBackend`: facenet-pytorch's MTCNN detector (shipped weights) with dlib 68-point landmarks.
* :class:`FanBackend`: face-alignment's 2D-FAN landmarks (and its S3FD detector, or dlib's). Its weights are
  downloaded by face-alignment on first use into the torch hub cache (``$TORCH_HOME/hub/checkpoints``); when they
  are missing and cannot be fetched, :class:`MissingWeightsError` names the file and how to get it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceswaplab.faces.template import NUM_LANDMARKS


class MissingWeightsError(FileNotFoundError):
    """Pretrained weights a backend needs are not on this machine."""


@dataclass
class Face:
    """One detected face in an image: box ``[x0, y0, x1, y1]`` (pixels), detector score, (68, 2) landmarks."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    embedding: np.ndarray | None = None  # (128,) identity descriptor, when computed

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])


def dlib_model_path(name: str) -> Path:
    """Path of a model file shipped in ``face_recognition_models`` (located without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise MissingWeightsError(
            f"dlib model {name} not found: the package face_recognition_models is not installed "
            "(pip install face-recognition-models)"
        )
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise MissingWeightsError(f"dlib model file missing: {path} (reinstall face-recognition-models)")
    return path


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


class FaceBackend(ABC):
    """Finds faces and their 68 landmarks.

    Subclasses implement `detect` (boxes and scores) and `landmarks` (68 points inside given boxes); `faces`
    combines them. Splitting the two lets the pipeline detect on a downscaled copy of a huge image and still
    place landmarks at full resolution.
    """

    @abstractmethod
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes (N, 4) ``[x0, y0, x1, y1]`` and scores (N,) in an (H, W, 3) uint8 RGB image."""

    @abstractmethod
    def landmarks(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The (N, 68, 2) landmarks of the faces in `boxes` (N, 4)."""

    def faces(self, image: np.ndarray) -> list[Face]:
        """Detect all faces with their landmarks."""
        image = _rgb(image)
        boxes, scores = self.detect(image)
        if len(boxes) == 0:
            return []
        lms = self.landmarks(image, boxes)
        return [Face(np.asarray(b, np.float64), float(s), l) for b, s, l in zip(boxes, scores, lms)]


def _dlib_rect(box):
    import dlib

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return dlib.rectangle(x0, y0, x1, y1)


def _shape_to_array(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


@functools.lru_cache(maxsize=None)
def _dlib_model(kind: str, name: str):
    """Load a dlib model once per process (the 68-point predictor alone takes a second)."""
    import dlib

    return getattr(dlib, kind)(str(dlib_model_path(name)))


class DlibLandmarks:
    """dlib's 68-point shape predictor (trained on boxes from dlib's own detectors)."""

    def __init__(self):
        self.predictor = _dlib_model("shape_predictor", "shape_predictor_68_face_landmarks.dat")

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        out = np.zeros((len(boxes), NUM_LANDMARKS, 2))
        for i, box in enumerate(boxes):
            out[i] = _shape_to_array(self.predictor(image, _dlib_rect(box)))
        return out

    def shape(self, image: np.ndarray, box: np.ndarray):
        return self.predictor(image, _dlib_rect(box))


class DlibBackend(FaceBackend):
    """dlib HOG (``detector="hog"``, fast) or CNN MMOD (``detector="cnn"``, more robust, slow on CPU) detection.

    `upsample` doubles the image that many times before detecting: the HOG detector finds faces down to about
    80 px without upsampling, 40 px with one. Detections scoring below `threshold` are dropped: real faces
    score about 0.5 to 3, while most HOG false positives (hands, textures) score below 0.3.
    """

    def __init__(self, detector: str = "hog", upsample: int = 1, threshold: float = 0.3):
        import dlib

        if detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        elif detector == "cnn":
            self._detector = _dlib_model("cnn_face_detection_model_v1", "mmod_human_face_detector.dat")
        else:
            raise ValueError(f"dlib detector must be 'hog' or 'cnn', got {detector!r}")
        self.detector = detector
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self._landmarks = DlibLandmarks()

    def detect(self, image):
        image = _rgb(image)
        if self.detector == "hog":
            rects, scores, _ = self._detector.run(image, self.upsample, self.threshold)
        else:
            dets = self._detector(image, self.upsample)
            rects = [d.rect for d in dets if d.confidence >= self.threshold]
            scores = [d.confidence for d in dets if d.confidence >= self.threshold]
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float64)
        return boxes.reshape(-1, 4), np.asarray(scores, np.float64)

    def landmarks(self, image, boxes):
        return self._landmarks(_rgb(image), _to_dlib_box(boxes))


def _to_dlib_box(boxes: np.ndarray) -> np.ndarray:
    """Our boxes are [x0, y0, x1, y1) with exclusive ends; dlib rectangles are inclusive."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    boxes[:, 2:] -= 1
    return boxes


class MtcnnBackend(FaceBackend):
    """facenet-pytorch's MTCNN for boxes, dlib's 68-point predictor for landmarks.

    MTCNN boxes are tighter and sit lower than the boxes dlib's predictor was trained on; they are mapped to
    dlib's framing (square, centred on the MTCNN box, slightly raised) before the predictor runs.
    """

    def __init__(self, min_face_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 threshold: float = 0.9, device: str = "cpu"):
        from facenet_pytorch import MTCNN

        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, thresholds=list(thresholds),
                            device=device, post_process=False)
        self.threshold = float(threshold)
        self._landmarks = DlibLandmarks()

    def detect(self, image):
        import torch

        with torch.inference_mode():
            boxes, probs = self._mtcnn.detect(_rgb(image))
        if boxes is None:
            return np.zeros((0, 4)), np.zeros(0)
        keep = np.asarray(probs) >= self.threshold
        return np.asarray(boxes, np.float64)[keep], np.asarray(probs, np.float64)[keep]

    def landmarks(self, image, boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 + 0.08 * h
        s = 0.5 * (w + h) / 2
        dlib_boxes = np.stack([cx - s, cy - s, cx + s, cy + s], 1)
        return self._landmarks(_rgb(image), dlib_boxes)


class FanBackend(FaceBackend):
    """face-alignment's 2D-FAN landmarks; boxes from its S3FD detector (``detector="sfd"``) or dlib HOG.

    The weights are fetched by face-alignment on first use into the torch hub cache; this backend checks for
    them first and raises :class:`MissingWeightsError` with the file name and the way to get it, instead of
    attempting a download that would fail offline.
    """

    def __init__(self, detector: str = "sfd", device: str = "cpu", upsample: int = 1):
        if detector not in ("sfd", "dlib"):
            raise ValueError(f"fan backend detector must be 'sfd' or 'dlib', got {detector!r}")
        if importlib.util.find_spec("face_alignment") is None:
            raise ModuleNotFoundError(
                "backend=fan needs the face-alignment package: pip install -e '.[fan]' && pip install --no-deps "
                "face-alignment (without --no-deps it replaces opencv-python-headless with the GUI build)")
        missing = [(url, path) for url, path in fan_weight_files(detector) if not path.is_file()]
        if missing:
            lines = "\n".join(f"  {path}  (from {url})" for url, path in missing)
            raise MissingWeightsError(
                "face-alignment (FAN) weights not found:\n" + lines + "\n"
                "Get them by running once on a machine with internet:\n"
                "  python -c \"import face_alignment as fa; fa.FaceAlignment(fa.LandmarksType.TWO_D, device='cpu')\"\n"
                "or download each URL into that folder; set TORCH_HOME to use another cache "
                "(then copy the files to $TORCH_HOME/hub/checkpoints)."
            )
        import face_alignment

        self.detector = detector
        self._dlib = DlibBackend("hog", upsample) if detector == "dlib" else None
        # With dlib boxes, face-alignment's weight-free "folder" detector stands in (boxes are passed explicitly).
        self._fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D,
            device=device,
            face_detector="folder" if detector == "dlib" else detector,
            compile=False,
        )

    def detect(self, image):
        if self._dlib is not None:
            return self._dlib.detect(image)
        dets = self._fa.face_detector.detect_from_image(_rgb(image).copy())
        if len(dets) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        dets = np.asarray(dets, np.float64)
        return dets[:, :4], dets[:, 4]

    def landmarks(self, image, boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        lms = self._fa.get_landmarks_from_image(_rgb(image), detected_faces=list(boxes))
        return np.asarray(lms, np.float64)[:, :, :2]


def fan_weight_files(detector: str = "sfd") -> list[tuple[str, Path]]:
    """(url, cache path) of every weight file face-alignment will load for the 2D FAN and this detector."""
    from urllib.parse import urlparse

    import torch.hub
    from face_alignment.api import models_urls

    urls = [models_urls["2DFAN-4"]]
    if detector == "sfd":
        from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls

        urls.append(sfd_urls["s3fd"])
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return [(u, cache / os.path.basename(urlparse(u).path)) for u in urls]


class FaceEncoder:
    """dlib's ResNet face-recognition descriptor: 128-d, faces of one person lie within ~0.6 of each other."""

    def __init__(self):
        self._net = _dlib_model("face_recognition_model_v1", "dlib_face_recognition_resnet_model_v1.dat")
        self._shape = DlibLandmarks()

    def __call__(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The (128,) descriptor of `face` in `image`; uses dlib landmarks inside the face box."""
        image = _rgb(image)
        shape = self._shape.shape(image, _to_dlib_box(face.box)[0])
        return np.asarray(self._net.compute_face_descriptor(image, shape), np.float64)
