"""Swap faces in photos, folders and videos with a trained checkpoint or the landmark-warp baseline.

Command line (Hydra, ``conf/swap.yaml``)::

    python -m faceswaplab.swap checkpoint=runs/deepfakes/<run> input=talk.mp4 output=talk_swapped.mp4
    python -m faceswaplab.swap method=landmark_warp source=alice.jpg input=photos/ output=swapped/
    python -m faceswaplab.swap checkpoint=<run> input=party.jpg output=out.png reference=bob.jpg direction=BtoA

Python: ``swap_media(input, output, checkpoint=..., method=..., source=..., **options) -> SwapSummary``.

Per frame: detect faces (``backend``, dlib HOG by default) -> choose them (``select=largest``, ``reference=<photo>``
for the face closest in identity by dlib's descriptor, or ``select=all``) -> in videos, track each chosen face and
smooth its landmarks over time (one-euro filter, reset on large jumps) -> align to the canonical template at the
method's crop size -> swap the crop with the method -> face-hull mask from the target's landmarks (eroded and
blurred by fractions of the face width) -> colour transfer -> paste back through the inverse similarity
(``blend=seamless`` Poisson clone under a feathered alpha, or ``feather``) -> label -> write.

Outputs: an image is written in the format of its suffix (PNG, JPEG, WebP); a video keeps its resolution, frame
rate, frame count, time stamps and audio track (H.264; the audio packets are copied, or re-encoded to AAC when the
container cannot hold them). Folders are processed recursively into the same relative paths. Every output is
labelled as synthetic (see :mod:`faceswaplab.provenance`); ``label.metadata=false`` turns that off, with a warning.

Interrupted videos continue where they stopped: frames are encoded in segments of ``video.segment_frames`` into
``<output>.parts/`` (each segment renamed into place when complete; ``progress.json`` lists the finished ones
with the face tracker's state at their end). A rerun with the same settings skips the finished segments, so the
result is the same as an uninterrupted run; at the end the segments and the audio are joined into a temporary
file that is renamed onto ``<output>``, and the parts folder is removed. Interrupted folders continue too:
``<output>/.swap_progress.json`` marks an unfinished run, whose rerun skips the files already written. Nothing
is ever left under a final name half-written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from faceswaplab.faces import template
from faceswaplab.io import ImageReadError, atomic_path, read_image, write_json
from faceswaplab.provenance import IMAGE_FORMATS, Provenance

log = logging.getLogger("faceswaplab.swap")

SELECT = ("largest", "reference", "all")
BLENDS = ("seamless", "feather")
COLORS = ("lab_meanstd", "rgb_meanstd", "histogram", "none")
FOLDER_MARKER = ".swap_progress.json"


class SwapError(RuntimeError):
    """The conversion cannot run or produced nothing; the message names the file and the reason."""


class NoFaceError(SwapError):
    """No face was found where one is needed (the input, the source or the reference photo)."""


# ---------------------------------------------------------------------------------------------------------------
# Options


@dataclass
class MaskOptions:
    erode: float = 0.05  # shrink the face hull by this fraction of the face width (jaw end to jaw end)
    blur: float = 0.05  # Gaussian sigma of the mask's edge, fraction of the face width
    forehead: float = 0.3  # hull height above the brows, fraction of the chin-to-brow distance


@dataclass
class SmoothingOptions:
    enabled: bool = True
    min_cutoff: float = 1.5  # Hz: lower smooths still faces more (and lags more)
    beta: float = 0.5  # how fast the cutoff rises with speed (in face widths per second): less lag when moving
    d_cutoff: float = 1.0  # Hz, for the speed estimate
    reset: float = 0.25  # a jump of the landmarks beyond this fraction of the face width restarts the filter


@dataclass
class VideoOptions:
    codec: str = "libx264"  # libx264, or mpeg4 where libx264 is unavailable
    crf: int = 18  # libx264 quality (lower: better, larger)
    preset: str = "fast"
    segment_frames: int = 250  # frames per resumable segment
    redetect_every: int = 30  # search the whole frame at least this often; in between, near the last faces
    max_frames: int | None = None  # convert only the first N frames (the audio is cut to match)


@dataclass
class LabelOptions:
    metadata: bool = True  # XMP (images) / container tags (videos) stating the media is synthetic
    visible: bool = False  # draw a badge into a corner of every image and frame
    text: str = "AI-generated"
    corner: str = "bottom_right"


@dataclass
class C2paOptions:
    sign_cert: str | None = None  # PEM certificate chain
    private_key: str | None = None  # PEM private key
    alg: str = "es256"
    tsa_url: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.sign_cert or self.private_key)


@dataclass
class SwapOptions:
    """Options of :func:`swap_media` (the keys of ``conf/swap.yaml``; nested groups as dicts)."""

    source: str | None = None  # photo giving the identity, for methods that take a source (landmark_warp)
    direction: str = "AtoB"  # identity-specific methods: AtoB turns A faces into B
    device: str = "auto"  # auto | cpu | cuda | cuda:1 ...
    size: int = 256  # crop size for methods without a fixed image_size (landmark_warp)
    margin: float = template.DEFAULT_MARGIN
    backend: Any = "dlib"  # conf/backend/<name>, a config with _target_, or a FaceBackend
    detector: str | None = None
    upsample: int | None = None
    select: str = "largest"  # largest | reference | all
    reference: str | None = None  # photo of the person whose face is swapped (implies select=reference)
    tolerance: float = 0.6  # largest descriptor distance to the reference still counted as that person
    min_face_size: int = 40  # faces narrower than this (pixels) are left alone
    detect_size: int = 1024
    pad: Any = "auto"  # still images: retry detection on a padded copy when nothing is found
    color: str = "lab_meanstd"  # lab_meanstd | rgb_meanstd | histogram | none
    blend: str = "seamless"  # seamless | feather
    mask: MaskOptions = field(default_factory=MaskOptions)
    smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)
    video: VideoOptions = field(default_factory=VideoOptions)
    label: LabelOptions = field(default_factory=LabelOptions)
    c2pa: C2paOptions = field(default_factory=C2paOptions)
    jpeg_quality: int = 95
    overwrite: bool = False
    progress: bool = True

    @classmethod
    def from_dict(cls, options: dict) -> "SwapOptions":
        nested = {"mask": MaskOptions, "smoothing": SmoothingOptions, "video": VideoOptions,
                  "label": LabelOptions, "c2pa": C2paOptions}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown swap options {unknown}; known: {', '.join(sorted(known))}")
        values = dict(options)
        for name, kind in nested.items():
            v = values.get(name)
            if isinstance(v, dict):
                bad = sorted(set(v) - {f.name for f in dataclasses.fields(kind)})
                if bad:
                    raise TypeError(f"unknown {name} options {bad}")
                values[name] = kind(**v)
        return cls(**values)

    def validate(self) -> None:
        if self.select not in SELECT:
            raise ValueError(f"select must be one of {SELECT}, got {self.select!r}")
        if self.blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {self.blend!r}")
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {self.color!r}")
        if self.direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be AtoB or BtoA, got {self.direction!r}")
        if self.select == "reference" and not self.reference:
            raise ValueError("select=reference needs reference=<photo of the person to swap>")
        if self.video.segment_frames < 1:
            raise ValueError("video.segment_frames must be >= 1")
        if self.c2pa.enabled and not (self.c2pa.sign_cert and self.c2pa.private_key):
            raise ValueError("C2PA signing needs both c2pa.sign_cert and c2pa.private_key")


@dataclass
class SwapSummary:
    """What a run did: outputs written, faces swapped, and what was skipped and why."""

    outputs: list[str] = field(default_factory=list)
    images: int = 0  # still images written
    videos: int = 0  # videos written
    frames: int = 0  # images + video frames processed in this run
    faces: int = 0  # faces swapped
    frames_without_face: int = 0  # frames copied unchanged (videos) or images skipped for lack of a face
    skipped: dict[str, str] = field(default_factory=dict)  # input -> reason (unreadable, no face, exists ...)
    resumed_segments: int = 0

    def __str__(self) -> str:
        return (f"wrote {self.images} images and {self.videos} videos; swapped {self.faces} faces in "
                f"{self.frames} images/frames; {self.frames_without_face} without a face; "
                f"{len(self.skipped)} inputs skipped")


# ---------------------------------------------------------------------------------------------------------------
# Loading the method


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_swap_method(checkpoint: str | os.PathLike | None = None, method: Any = None, device: str = "auto",
                     size: int = 256):
    """The method to swap with, its crop size and its name for the labels: ``(method, size, name, ckpt)``.

    `checkpoint` is a ``.ckpt`` file or a run directory (``<dir>/checkpoints/last.ckpt``), loaded with
    :func:`faceswaplab.methods.load_method`. Otherwise `method` is a name of ``conf/method/`` (``landmark_warp``),
    a config with ``_target_``, or a :class:`FaceSwapMethod`; learned methods need a checkpoint. The crop size is
    the method's ``image_size`` hyperparameter, else the run's ``config.yaml`` ``data.image_size``, else `size`.
    """
    from faceswaplab.methods import FaceSwapMethod, load_method

    dev = _device(device)
    ckpt_path = None
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        ckpt_path = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
        if not ckpt_path.is_file():
            raise SwapError(f"checkpoint={checkpoint}: no checkpoint at {ckpt_path}")
        try:
            model = load_method(ckpt_path, map_location=dev)
        except (ValueError, RuntimeError, KeyError, OSError) as e:
            raise SwapError(f"cannot load checkpoint {ckpt_path}: {e}") from None
    elif isinstance(method, FaceSwapMethod):
        model = method
    elif method is not None:
        model = _instantiate_method(method)
    else:
        raise SwapError("give checkpoint=<run dir or .ckpt>, or method=landmark_warp with source=<photo>")
    model = model.to(dev).eval()
    crop = model.hparams.get("image_size") if hasattr(model, "hparams") else None
    if crop is None and ckpt_path is not None:
        crop = _run_image_size(ckpt_path)
    name = type(model).__module__.rpartition(".")[2]  # = its conf/method/<name>.yaml
    return model, int(crop or size), name, ckpt_path


def _instantiate_method(method: Any):
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    from faceswaplab.config import config_dir

    if isinstance(method, str):
        path = config_dir() / "method" / f"{method}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise SwapError(f"unknown method {method!r}; available: {', '.join(names)}")
        cfg = OmegaConf.load(path)
    elif isinstance(method, (dict, DictConfig)):
        cfg = OmegaConf.create(method) if isinstance(method, dict) else method
    else:
        raise SwapError(f"method must be a name, a config with _target_ or a FaceSwapMethod, got {method!r}")
    target = cfg.get("_target_", "")
    module, _, cls_name = str(target).rpartition(".")
    import importlib

    cls = getattr(importlib.import_module(module), cls_name)
    if getattr(cls, "trainable", True):
        raise SwapError(f"{cls_name} must be trained first: pass checkpoint=<its run directory or .ckpt>")
    return instantiate(OmegaConf.to_container(cfg, resolve=True))


def _run_image_size(ckpt_path: Path) -> int | None:
    from omegaconf import OmegaConf

    for folder in (ckpt_path.parent.parent, ckpt_path.parent):
        cfg = folder / "config.yaml"
        if cfg.is_file():
            return OmegaConf.load(cfg).get("data", {}).get("image_size")
    return None


# ---------------------------------------------------------------------------------------------------------------
# Temporal smoothing


class OneEuroFilter:
    """One-euro low-pass filter of a (68, 2) landmark set, with speeds measured in face widths per second.

    The cutoff frequency rises with the speed of each landmark: still faces are smoothed strongly (no jitter),
    moving ones weakly (no lag). A jump larger than `reset` face widths (a cut, a re-detection) restarts it.
    """

    def __init__(self, min_cutoff: float = 1.5, beta: float = 0.5, d_cutoff: float = 1.0, reset: float = 0.25):
        self.min_cutoff, self.beta, self.d_cutoff, self.reset = min_cutoff, beta, d_cutoff, reset
        self.x: np.ndarray | None = None  # (68, 2) last output
        self.dx: np.ndarray | None = None  # (68, 2) smoothed speed, face widths per second

    @staticmethod
    def _alpha(cutoff, dt: float):
        return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        width = max(float(np.linalg.norm(x[16] - x[0])), 1.0)
        if self.x is None or np.abs(x - self.x).mean() > self.reset * width:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x
        dx = (x - self.x) / (dt * width)
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.linalg.norm(self.dx, axis=-1, keepdims=True)  # (68, 1)
        a = self._alpha(cutoff, dt)
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()

    def state(self) -> dict:
        return {"x": None if self.x is None else self.x.tolist(), "dx": None if self.dx is None else self.dx.tolist()}

    def load(self, state: dict) -> None:
        self.x = None if state["x"] is None else np.asarray(state["x"], np.float64)
        self.dx = None if state["dx"] is None else np.asarray(state["dx"], np.float64)


class FaceTracker:
    """Follows the chosen faces from frame to frame (nearest centre) and smooths each one's landmarks.

    It also remembers where the faces were (:meth:`boxes`), so that the next frame can be searched near them.
    """

    def __init__(self, opts: SmoothingOptions):
        self.opts = opts
        self.tracks: list[tuple[np.ndarray, OneEuroFilter]] = []  # (last landmarks (68, 2), filter)

    def _filter(self) -> OneEuroFilter:
        o = self.opts
        return OneEuroFilter(o.min_cutoff, o.beta, o.d_cutoff, o.reset)

    def __call__(self, landmarks: list[np.ndarray], dt: float) -> list[np.ndarray]:
        out, tracks, free = [], [], list(self.tracks)
        for lm in landmarks:
            centre = lm.mean(0)
            width = max(float(np.linalg.norm(lm[16] - lm[0])), 1.0)
            dists = [np.linalg.norm(last.mean(0) - centre) for last, _ in free]
            if dists and min(dists) < 0.5 * width:
                _, filt = free.pop(int(np.argmin(dists)))
            else:
                filt = self._filter()
            smooth = filt(lm, dt) if self.opts.enabled else np.asarray(lm, np.float64)
            tracks.append((smooth, filt))
            out.append(smooth)
        self.tracks = tracks  # faces not seen in this frame are forgotten
        return out

    def boxes(self) -> list[np.ndarray]:
        """``[x0, y0, x1, y1]`` of every tracked face's last landmarks."""
        return [np.concatenate([lm.min(0), lm.max(0)]) for lm, _ in self.tracks]

    def state(self) -> list[dict]:
        return [{"landmarks": lm.tolist(), **f.state()} for lm, f in self.tracks]

    def load(self, state: list[dict]) -> None:
        self.tracks = []
        for s in state:
            f = self._filter()
            f.load(s)
            self.tracks.append((np.asarray(s["landmarks"], np.float64), f))


# ---------------------------------------------------------------------------------------------------------------
# One frame


class FaceSwapper:
    """Everything needed to swap the faces of one image: the method, the face backend and the settings.

    ``swapper(frame) -> (frame, faces swapped)``; pass a :class:`FaceTracker` and the frame interval for videos.
    """

    def __init__(self, opts: SwapOptions, checkpoint=None, method=None):
        from faceswaplab.prepare import make_backend

        self.opts = opts
        self.method, self.size, self.name, self.checkpoint = load_swap_method(checkpoint, method, opts.device,
                                                                              opts.size)
        self.device = next(iter(self.method.parameters()), None)
        self.device = self.device.device if self.device is not None else _device(opts.device)
        self.backend = make_backend(opts.backend, opts.detector, opts.upsample)
        self.needs_source = not getattr(self.method, "identity_specific", False)
        self.source_crop = self.source_landmarks = None
        if self.needs_source:
            if not opts.source:
                raise SwapError(f"{self.name} takes the identity from a photo: pass source=<photo>")
            self.source_crop, self.source_landmarks = self._load_source(opts.source)
        elif opts.source:
            log.warning("source=%s is ignored: %s swaps identities it was trained on (direction=%s)",
                        opts.source, self.name, opts.direction)
        self.encoder = self.reference = None
        if opts.select == "reference":
            from faceswaplab.faces.backends import FaceEncoder

            self.encoder = FaceEncoder()
            self.reference = self._reference_descriptor(opts.reference)

    # ---- set-up

    def _largest_face(self, path: str, role: str):
        from faceswaplab.prepare import find_faces

        try:
            image = read_image(path)
        except ImageReadError as e:
            raise SwapError(f"{role} photo {path}: {e.reason}") from None
        faces = find_faces(self.backend, image, self.opts.detect_size, "auto")
        if not faces:
            raise NoFaceError(f"no face found in the {role} photo {path}")
        return image, max(faces, key=lambda f: f.area)

    def _load_source(self, path: str):
        from faceswaplab.faces.alignment import align_face

        image, face = self._largest_face(path, "source")
        crop, _, lm = align_face(image, face.landmarks, self.size, self.opts.margin)
        return crop, lm.astype(np.float32)

    def _reference_descriptor(self, path: str) -> np.ndarray:
        image, face = self._largest_face(path, "reference")
        return self.encoder(image, face)

    # ---- per frame

    def find(self, frame: np.ndarray, pad: Any = None, near: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """The (68, 2) landmarks of the faces to swap in `frame`, largest first.

        `near`: boxes where faces were in the previous frame; the search looks around them first (much cheaper
        than the whole frame) and falls back to the whole frame when it finds nothing there.
        """
        from faceswaplab.prepare import find_faces

        faces = self._detect_near(frame, near) if near else []
        if not faces:
            faces = find_faces(self.backend, frame, self.opts.detect_size, pad)
        faces = [f for f in faces if f.width >= self.opts.min_face_size]
        if not faces:
            return []
        faces.sort(key=lambda f: -f.area)
        if self.opts.select == "all":
            return [f.landmarks for f in faces]
        if self.opts.select == "largest":
            return [faces[0].landmarks]
        dist = [float(np.linalg.norm(self.encoder(frame, f) - self.reference)) for f in faces]
        best = int(np.argmin(dist))
        return [faces[best].landmarks] if dist[best] <= self.opts.tolerance else []

    def _detect_near(self, frame: np.ndarray, boxes: list[np.ndarray]) -> list:
        """Faces found in regions of three times each box's size around it, in frame coordinates."""
        from faceswaplab.prepare import find_faces

        h, w = frame.shape[:2]
        found: list = []
        for x0, y0, x1, y1 in boxes:
            r = max(x1 - x0, y1 - y0)
            rx0, ry0 = int(max(x0 - r, 0)), int(max(y0 - r, 0))
            rx1, ry1 = int(min(x1 + r, w)), int(min(y1 + r, h))
            if rx1 - rx0 < 16 or ry1 - ry0 < 16:
                continue
            # The region spans about three face widths: detected at 320 px the face is ~100 px, enough for any
            # detector, and far cheaper than a large face at full resolution (landmarks stay at full resolution).
            for f in find_faces(self.backend, frame[ry0:ry1, rx0:rx1], min(self.opts.detect_size, 320), None):
                f.box = f.box + [rx0, ry0, rx0, ry0]
                f.landmarks = f.landmarks + [rx0, ry0]
                # Regions of neighbouring faces overlap: keep one copy of each face.
                if all(np.abs(f.landmarks.mean(0) - g.landmarks.mean(0)).max() > 0.2 * f.width for g in found):
                    found.append(f)
        return found

    def __call__(self, frame: np.ndarray, tracker: FaceTracker | None = None, dt: float = 1 / 30,
                 pad: Any = None, index: int = 0) -> tuple[np.ndarray, int]:
        """Swap the chosen faces of one image or frame: ``(new frame, number of faces swapped)``.

        In videos pass the `tracker` (smoothing, and the search near the previous faces: every
        ``video.redetect_every`` frames the whole frame is searched again, for faces that appeared), the frame
        interval `dt` and the frame `index`.
        """
        near = None
        if tracker is not None and index % max(self.opts.video.redetect_every, 1):
            near = tracker.boxes()
        landmarks = self.find(frame, pad, near)
        if tracker is not None:
            landmarks = tracker(landmarks, dt)
        out = self.swap_faces(frame, landmarks) if landmarks else frame
        if self.opts.label.visible:
            from faceswaplab.provenance import draw_label

            out = draw_label(out, self.opts.label.text, self.opts.label.corner)
        return out, len(landmarks)

    def swap_faces(self, frame: np.ndarray, landmarks: list[np.ndarray]) -> np.ndarray:
        """Swap the faces with these landmarks (each (68, 2) in frame pixels) and blend them into a copy."""
        import torch

        from faceswaplab.faces.alignment import align_face
        from faceswaplab.images import to_image, to_tensor

        crops, transforms, crop_lms = zip(*(align_face(frame, lm, self.size, self.opts.margin) for lm in landmarks))
        target = to_tensor(np.stack(crops)).to(self.device)  # (N, 3, S, S)
        target_lm = torch.as_tensor(np.stack(crop_lms), dtype=torch.float32, device=self.device)  # (N, 68, 2)
        kwargs: dict[str, Any] = {"target_landmarks": target_lm}
        if self.needs_source:
            n = len(crops)
            source = to_tensor(self.source_crop)[None].expand(n, -1, -1, -1).to(self.device)
            source_lm = torch.as_tensor(self.source_landmarks, device=self.device)
            kwargs["source_landmarks"] = source_lm[None].expand(n, -1, -1)
        else:
            source = None
            kwargs["direction"] = self.opts.direction
        with torch.inference_mode():
            swapped = to_image(self.method.swap(target, source, **kwargs))  # (N, S, S, 3)
        out = frame.copy()
        for crop, m, lm, face in zip(crops, transforms, crop_lms, swapped):
            out = self._blend(out, crop, face, m, lm)
        return out

    def _blend(self, frame, crop, face, m, lm) -> np.ndarray:
        import cv2

        from faceswaplab.faces import blending, masks
        from faceswaplab.faces.alignment import invert_transform, transform_points

        o = self.opts
        width = float(np.linalg.norm(lm[16] - lm[0]))  # face width in crop pixels
        mask = masks.face_hull_mask_np(lm, self.size, o.mask.forehead, dilate=-o.mask.erode * width,
                                       blur=o.mask.blur * width)  # (S, S) in [0, 1]
        face = blending.color_transfer(face, crop, mask, mode=o.color)
        # Work in the frame region the crop covers only: cheap on large frames, and every pixel outside the
        # chosen face's mask is left exactly as it was.
        h, w = frame.shape[:2]
        inv = invert_transform(m)
        s = self.size
        corners = transform_points(np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64), inv)
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 3, [w, h])
        if x1 <= x0 or y1 <= y0:
            return frame
        to_roi = inv.copy()
        to_roi[:, 2] -= (x0, y0)  # crop -> roi pixels
        size = (int(x1 - x0), int(y1 - y0))
        warped = cv2.warpAffine(face, to_roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(mask, to_roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        roi = frame[y0:y1, x0:x1]
        if o.blend == "seamless":
            warped = blending.seamless_clone(warped, roi, alpha > 0.5, fallback_radius=max(1, round(0.05 * width)))
        a = alpha[..., None]
        blended = a * warped.astype(np.float32) + (1.0 - a) * roi.astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        return frame


# ---------------------------------------------------------------------------------------------------------------
# Images


def _provenance(swapper: FaceSwapper, opts: SwapOptions) -> Provenance | None:
    if not opts.label.metadata:
        return None
    ckpt = swapper.checkpoint
    # The run folder and file name identify the model; the rest of the path (user names, mounts) stays private.
    name = Path(*Path(ckpt).resolve().parts[-3:]).as_posix() if ckpt else None
    return Provenance(method=swapper.name, checkpoint=name)


def save_image(path: str | os.PathLike, image: np.ndarray, info: Provenance | None, jpeg_quality: int = 95,
               c2pa: C2paOptions | None = None) -> None:
    """Atomically write an (H, W, 3) uint8 RGB image with its provenance labels (format from the suffix)."""
    from PIL import Image

    from faceswaplab.provenance import image_save_options

    path = Path(path)
    options = image_save_options(path, info)
    fmt = IMAGE_FORMATS[path.suffix.lower()]
    if fmt == "JPEG":
        options["quality"] = jpeg_quality
    elif fmt == "WEBP":
        options["quality"] = jpeg_quality
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **options)
        if c2pa is not None and c2pa.enabled and info is not None:
            _sign(tmp, info, c2pa)


def _sign(path: Path, info: Provenance, c2pa: C2paOptions) -> None:
    from faceswaplab.provenance import sign_c2pa

    sign_c2pa(path, info, c2pa.sign_cert, c2pa.private_key, c2pa.alg, c2pa.tsa_url)


def _swap_image(swapper: FaceSwapper, src: Path, dst: Path, summary: SwapSummary) -> None:
    opts = swapper.opts
    image = read_image(src)  # ImageReadError names the file
    out, n = swapper(image, pad=opts.pad)
    summary.frames += 1
    if n == 0:
        summary.frames_without_face += 1
        raise NoFaceError(f"no face to swap in {src}"
                          + (" (none matches the reference)" if opts.select == "reference" else ""))
    save_image(dst, out, _provenance(swapper, opts), opts.jpeg_quality, opts.c2pa)
    summary.faces += n
    summary.images += 1
    summary.outputs.append(str(dst))


# ---------------------------------------------------------------------------------------------------------------
# Videos


def _settings_key(swapper: FaceSwapper, opts: SwapOptions, src: Path) -> str:
    """A fingerprint of everything that changes a video's frames: resuming is allowed only when it matches."""
    st = src.stat()
    ckpt = swapper.checkpoint
    record = {
        "input": [str(src.resolve()), st.st_size, st.st_mtime_ns],
        "checkpoint": [str(ckpt), ckpt.stat().st_size, ckpt.stat().st_mtime_ns] if ckpt else None,
        "method": swapper.name,
        "hparams": {k: str(v) for k, v in dict(getattr(swapper.method, "hparams", {})).items()},
        # Field by field: asdict would deep-copy a backend instance.
        "options": {f.name: _plain(getattr(opts, f.name)) for f in dataclasses.fields(opts)
                    if f.name not in ("overwrite", "progress", "c2pa")},
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _decoded(src: Path, frames):
    """Pass the decoder's frames through, turning its failures into a SwapError naming the file and frame."""
    index = -1
    while True:
        try:
            item = next(frames)
        except StopIteration:
            return
        except Exception as e:  # noqa: BLE001 - PyAV raises many kinds for corrupt data
            where = "at the start" if index < 0 else f"after frame {index}"
            raise SwapError(f"{src}: video decoding failed {where} ({type(e).__name__}: {e}); the finished "
                            "segments are kept") from None
        index = item[0]
        yield item


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value if isinstance(
        value, (str, int, float, bool, type(None), dict, list)) else repr(value)


def _swap_video(swapper: FaceSwapper, src: Path, dst: Path, summary: SwapSummary,
                on_progress: Callable[[int, int], None] | None = None) -> None:
    from tqdm import tqdm

    from faceswaplab.provenance import video_metadata
    from faceswaplab.video import VIDEO_OUTPUT_SUFFIXES, SegmentWriter, iter_frames, mux, probe

    opts = swapper.opts
    try:
        info = probe(src)
    except Exception as e:  # noqa: BLE001 - PyAV raises many kinds for broken files
        raise SwapError(f"{src}: not a readable video ({e})") from None
    if dst.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
        raise SwapError(f"{dst}: videos are written as {', '.join(VIDEO_OUTPUT_SUFFIXES)}")
    parts = dst.with_name(dst.name + ".parts")
    progress_path = parts / "progress.json"
    key = _settings_key(swapper, opts, src)
    progress = {"settings": key, "segments": []}
    if progress_path.is_file():
        old = json.loads(progress_path.read_text())
        if old.get("settings") == key:
            progress = old
        elif not opts.overwrite:
            raise SwapError(f"{parts} holds an unfinished conversion with other settings or input; "
                            "delete it or pass overwrite=true")
        else:
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    for stale in parts.glob(".seg_*"):  # a segment cut short by a kill
        stale.unlink()
    done = progress["segments"]
    start = sum(s["frames"] for s in done)
    summary.resumed_segments += len(done)
    if done:
        log.info("%s: continuing after %d finished segments (%d frames)", dst, len(done), start)

    total = info.frames or 0
    if opts.video.max_frames:
        total = min(total, opts.video.max_frames) if total else opts.video.max_frames
    tracker = FaceTracker(opts.smoothing)
    if done:
        tracker.load(done[-1]["tracker"])
    dt = 1.0 / float(info.rate)
    bar = tqdm(total=total or None, initial=start, unit="frame", desc=src.name, disable=not opts.progress,
               dynamic_ncols=True)
    writer = None
    seg = {"frames": 0, "faces": 0, "no_face": 0}
    last_pts = None
    frames_seen = start

    def commit() -> None:
        nonlocal writer, seg
        writer.close()
        k = len(done)
        name = f"seg_{k:05d}.mp4"
        os.replace(writer.path, parts / name)
        done.append({"file": name, "offset": writer.first_pts, **seg, "tracker": tracker.state()})
        write_json(progress_path, progress)
        writer, seg = None, {"frames": 0, "faces": 0, "no_face": 0}

    try:
        for index, pts, frame in _decoded(src, iter_frames(src)):
            if opts.video.max_frames and index >= opts.video.max_frames:
                break
            last_pts = pts
            if index < start:
                continue
            if writer is None:
                writer = SegmentWriter(parts / f".seg_{len(done):05d}.mp4", info, opts.video.codec,
                                       opts.video.crf, opts.video.preset)
            out, n = swapper(frame, tracker, dt, index=index)
            writer.write(out, pts)
            seg["frames"] += 1
            seg["faces"] += n
            seg["no_face"] += n == 0
            summary.frames += 1
            frames_seen = index + 1
            bar.update(1)
            if seg["frames"] >= opts.video.segment_frames:
                commit()
            if on_progress is not None:
                on_progress(frames_seen, total)
        if writer is not None:
            commit()
    except BaseException:
        if writer is not None:
            try:
                writer.container.close()
            except Exception:  # noqa: BLE001 - already failing; the stale segment is removed on the next run
                pass
            Path(writer.path).unlink(missing_ok=True)
        raise
    finally:
        bar.close()

    frames = sum(s["frames"] for s in done)
    faces = sum(s["faces"] for s in done)
    no_face = sum(s["no_face"] for s in done)
    summary.frames_without_face += no_face
    if frames == 0:
        shutil.rmtree(parts, ignore_errors=True)
        raise SwapError(f"{src}: no decodable video frames")
    if faces == 0:
        shutil.rmtree(parts, ignore_errors=True)
        raise NoFaceError(f"no face to swap in any of the {frames} frames of {src}; nothing written")
    if no_face:
        log.info("%s: %d of %d frames had no face and were copied unchanged", src, no_face, frames)

    end_time = None
    if opts.video.max_frames and last_pts is not None:
        end_time = float(last_pts * info.time_base) + dt  # cut the audio where the converted video ends
    info_label = _provenance(swapper, opts)
    metadata = video_metadata(info_label) if info_label else {}
    segments = [(parts / s["file"], s["offset"]) for s in done]
    with atomic_path(dst) as tmp:
        mux(segments, src, tmp, metadata=metadata, end_time=end_time)
        if opts.c2pa.enabled and info_label is not None:
            _sign(tmp, info_label, opts.c2pa)
    shutil.rmtree(parts, ignore_errors=True)
    summary.faces += faces
    summary.videos += 1
    summary.outputs.append(str(dst))


# ---------------------------------------------------------------------------------------------------------------
# The run


def _output_for(rel: Path, is_video: bool) -> Path:
    """The output path of an input inside a folder: same relative path; unwritable formats become PNG / MP4."""
    from faceswaplab.video import VIDEO_OUTPUT_SUFFIXES

    suffix = rel.suffix.lower()
    if is_video:
        return rel if suffix in VIDEO_OUTPUT_SUFFIXES else rel.with_suffix(".mp4")
    return rel if suffix in IMAGE_FORMATS else rel.with_suffix(".png")


def swap_media(input: str | os.PathLike, output: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
               method: Any = None, on_progress: Callable[[int, int], None] | None = None,
               **options: Any) -> SwapSummary:
    """Swap the faces of an image, a video or a folder of them (recursively) into `output`.

    `checkpoint` (a ``.ckpt`` or a run directory) or `method` (``"landmark_warp"``, a config or a
    :class:`~faceswaplab.methods.FaceSwapMethod`) chooses the swap; `options` are the fields of
    :class:`SwapOptions` (nested groups as dicts: ``mask={"erode": 0.1}``). `on_progress(frames done, total)` is
    called after every video frame. Raises :class:`SwapError` (:class:`NoFaceError` when no face was swapped at
    all) with the file and the reason; see the module docstring for resuming.
    """
    opts = SwapOptions.from_dict(options)
    if opts.reference and opts.select == "largest":
        opts.select = "reference"  # a reference photo means: swap that person
    opts.validate()
    src, dst = Path(input), Path(output)
    if not src.exists():
        raise SwapError(f"input not found: {src}")
    if not opts.label.metadata:
        log.warning("label.metadata=false: the outputs will not say that they are synthetic")
    if opts.c2pa.enabled and opts.label.metadata:
        from faceswaplab.provenance import check_c2pa_available

        check_c2pa_available()
    if src.is_dir() and dst.resolve().is_relative_to(src.resolve()):
        raise SwapError(f"output {dst} lies inside the input folder {src}; choose another place")

    from faceswaplab.data.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    if src.is_file():
        is_video = src.suffix.lower() in VIDEO_SUFFIXES
        from faceswaplab.video import VIDEO_OUTPUT_SUFFIXES

        if not is_video and dst.suffix.lower() not in IMAGE_FORMATS:
            raise SwapError(f"output {dst}: images are written as {', '.join(sorted(IMAGE_FORMATS))}")
        if is_video and dst.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
            raise SwapError(f"output {dst}: videos are written as {', '.join(VIDEO_OUTPUT_SUFFIXES)}")
        if dst.exists() and not opts.overwrite:
            raise SwapError(f"output {dst} exists; pass overwrite=true to replace it")
        if dst.is_dir():
            raise SwapError(f"output {dst} is a folder; give a file name")
        swapper = FaceSwapper(opts, checkpoint, method)
        summary = SwapSummary()
        try:
            if is_video:
                _swap_video(swapper, src, dst, summary, on_progress)
            else:
                _swap_image(swapper, src, dst, summary)
        except ImageReadError as e:
            raise SwapError(f"cannot read {src}: {e.reason}") from None
        log.info(str(summary))
        return summary

    marker = dst / FOLDER_MARKER
    resuming = marker.is_file()
    if dst.exists() and any(dst.iterdir()) and not resuming and not opts.overwrite:
        raise SwapError(f"output folder {dst} exists and is not empty; pass overwrite=true to write into it")
    from faceswaplab.data.sources import media_files

    files = media_files(src)
    if not files:
        raise SwapError(f"no image or video files found in {src}")
    swapper = FaceSwapper(opts, checkpoint, method)
    dst.mkdir(parents=True, exist_ok=True)
    write_json(marker, {"input": str(src.resolve())})
    summary = SwapSummary()
    for path in files:
        rel = path.relative_to(src)
        is_video = path.suffix.lower() in VIDEO_SUFFIXES
        if not is_video and path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        out = dst / _output_for(rel, is_video)
        if out.exists() and (resuming or not opts.overwrite):
            summary.skipped[str(rel)] = "output exists" + (" (finished earlier)" if resuming else "")
            continue
        try:
            if is_video:
                _swap_video(swapper, path, out, summary, on_progress)
            else:
                _swap_image(swapper, path, out, summary)
        except ImageReadError as e:
            summary.skipped[str(rel)] = f"unreadable: {e.reason}"
        except NoFaceError as e:
            summary.skipped[str(rel)] = f"no face: {e}"
        except SwapError as e:
            summary.skipped[str(rel)] = str(e)
        else:
            continue
        log.warning("skipped %s: %s", rel, summary.skipped[str(rel)])
    marker.unlink(missing_ok=True)
    log.info(str(summary))
    if summary.images + summary.videos == 0 and not any("finished earlier" in r for r in summary.skipped.values()):
        reasons = "; ".join(f"{k}: {v}" for k, v in list(summary.skipped.items())[:5])
        raise NoFaceError(f"nothing written from the {len(files)} files of {src} ({reasons})")
    return summary


swap = swap_media


# ---------------------------------------------------------------------------------------------------------------
# Command line


def _main() -> None:
    import hydra
    from omegaconf import DictConfig, OmegaConf

    from faceswaplab.config import CONFIG_DIR

    @hydra.main(config_path=CONFIG_DIR, config_name="swap", version_base="1.3")
    def main(cfg: DictConfig) -> None:
        options = OmegaConf.to_container(cfg, resolve=True)
        input_path, output = options.pop("input"), options.pop("output")
        checkpoint, method = options.pop("checkpoint"), options.pop("method", None)
        try:
            summary = swap_media(input_path, output, checkpoint=checkpoint, method=method, **options)
        except (SwapError, FileNotFoundError, ValueError, TypeError) as e:
            log.error(str(e))
            sys.exit(1)
        if summary.skipped:
            log.info("skipped: %s", "; ".join(f"{k} ({v})" for k, v in summary.skipped.items()))

    main()


if __name__ == "__main__":
    _main()
