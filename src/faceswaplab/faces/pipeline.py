"""The face pipeline that prepare, swap and the data sources share: a backend from config, every face of an image
with its 68 landmarks, and the largest face of a photo.

:func:`make_backend` builds a :class:`~faceswaplab.faces.backends.FaceBackend` from ``conf/backend/<name>.yaml``;
:func:`find_faces` detects on a bounded-size copy and places landmarks at full resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faceswaplab.config import config_dir


def make_backend(backend: Any = "dlib", detector: str | None = None, upsample: int | None = None):
    """Instantiate a face backend from a name in ``conf/backend/``, a config with ``_target_``, or pass one through."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from faceswaplab.faces.backends import FaceBackend

    if isinstance(backend, FaceBackend):
        return backend
    cfg = backend_config(backend, detector, upsample)
    try:
        return instantiate(cfg)
    except InstantiationException as e:  # surface the backend's own error (e.g. MissingWeightsError)
        if e.__cause__ is not None:
            raise e.__cause__ from None
        raise


def backend_config(backend: Any, detector: str | None = None, upsample: int | None = None) -> dict:
    """The backend's config as a plain dict with ``_target_``, with the `detector` / `upsample` shortcuts applied."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(backend, str):
        path = config_dir() / "backend" / f"{backend}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ValueError(f"unknown face backend {backend!r}; available: {', '.join(names)}")
        cfg = OmegaConf.to_container(OmegaConf.load(path))
    elif isinstance(backend, DictConfig):
        cfg = OmegaConf.to_container(backend, resolve=True)
    elif isinstance(backend, dict) and "_target_" in backend:
        cfg = dict(backend)
    else:
        raise TypeError(f"backend must be a name, a config with _target_ or a FaceBackend, got {backend!r}")
    cfg.update({k: v for k, v in (("detector", detector), ("upsample", upsample)) if v is not None})
    return cfg


def find_faces(backend, image: np.ndarray, detect_size: int = 1024, pad: Any = "auto") -> list:
    """All faces of `image` with landmarks in its own pixel coordinates.

    Detection runs on a copy downscaled to `detect_size` (long side) when the image is larger, which bounds its
    cost (faces narrower than about ``40 * long side / detect_size`` px are then missed by dlib HOG with one
    upsampling); landmarks are always placed at full resolution. `pad` (a fraction of each side added by edge
    replication, or "auto": 0.5 tried only when nothing is found) helps with tight crops whose face touches
    the border, which detectors miss.
    """
    import cv2

    from faceswaplab.faces.backends import Face

    def run(img: np.ndarray) -> list:
        h, w = img.shape[:2]
        scale = min(1.0, detect_size / max(h, w))
        small = img if scale == 1.0 else cv2.resize(img, (round(w * scale), round(h * scale)),
                                                    interpolation=cv2.INTER_AREA)
        boxes, scores = backend.detect(small)
        if len(boxes) == 0:
            return []
        boxes = np.asarray(boxes, np.float64) / scale
        lms = backend.landmarks(img, boxes)
        return [Face(b, float(s), l) for b, s, l in zip(boxes, scores, lms)]

    for p in pad_tries(pad):
        if p <= 0:
            faces = run(image)
        else:
            h, w = image.shape[:2]
            py, px = int(round(p * h)), int(round(p * w))
            padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE)
            faces = run(padded)
            for f in faces:  # back to the coordinates of the unpadded image
                f.box = f.box - [px, py, px, py]
                f.landmarks = f.landmarks - [px, py]
        if faces:
            return faces
    return []


def pad_tries(pad: Any) -> list[float]:
    """The paddings :func:`find_faces` tries in turn for a `pad` setting (validated here)."""
    if pad == "auto":
        return [0.0, 0.5]
    if pad is None:
        return [0.0]
    if isinstance(pad, (int, float)) and not isinstance(pad, bool) and 0 <= pad <= 2:
        return [float(pad)]
    raise ValueError(f"pad must be 'auto', null or a fraction of the image side in [0, 2], got {pad!r}")


def largest_face(backend, path, detect_size: int = 1024, pad: Any = "auto"):
    """``(image, face)``: a photo (a file `path`, or an (H, W, 3) uint8 RGB array) and its largest face, or
    ``(image, None)`` when it has none.

    Raises :class:`~faceswaplab.io.ImageReadError` (naming the file) when the photo cannot be read.
    """
    from faceswaplab.io import read_image

    image = path if isinstance(path, np.ndarray) else read_image(Path(path))
    faces = find_faces(backend, image, detect_size, pad)
    return image, (max(faces, key=lambda f: f.area) if faces else None)

