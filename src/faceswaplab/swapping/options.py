"""Options, summary and errors of :func:`faceswaplab.swapping.swap_media` (the keys of ``conf/swap.yaml``)."""

from __future__ import annotations

import dataclasses
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from faceswaplab.errors import FaceSwapLabError
from faceswaplab.faces import template

SELECT = ("largest", "reference", "all")
BLENDS = ("seamless", "feather")
COLORS = ("lab_meanstd", "rgb_meanstd", "histogram", "none")
FOLDER_MARKER = ".swap_progress.json"


class SwapError(FaceSwapLabError, RuntimeError):
    """The conversion cannot run or produced nothing; the message names the file and the reason."""


class NoFaceError(SwapError):
    """No face was found where one is needed (the input, the source or the reference photo)."""


# ---------------------------------------------------------------------------------------------------------------
# Options


@dataclass
class MaskOptions:
    kind: str = "hull"  # hull | segment | parse: the hull, or the hull less what covers the face (the target's
    # hands, hair, glasses stay in the picture; see faceswaplab.faces.occlusion)
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
    preset: str = "veryfast"  # libx264 speed preset; at crf 18 veryfast takes half the encode time of fast
    segment_frames: int = 250  # frames per resumable segment
    redetect_every: int = 30  # search the whole frame at least this often; in between, near the last faces
    track: bool = True  # between those searches refit the last frame's landmarks without detecting (checked)
    track_similarity: float = 0.8  # least correlation of the refitted face's grey patch with the last one
    batch_size: int = 8  # frames whose faces the method swaps in one call
    workers: int = 2  # threads pasting faces back while the next frames are swapped; 0: all in one thread,
    # else decoding and encoding run in threads of their own too
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
            if name == "mask" and isinstance(v, str):  # mask=segment: the kind, with the default sizes
                v = {"kind": v}
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
        from faceswaplab.faces.occlusion import check_mask_kind

        check_mask_kind(self.mask.kind, "mask.kind")
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {self.color!r}")
        if self.direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be AtoB or BtoA, got {self.direction!r}")
        if self.select == "reference" and not self.reference:
            raise ValueError("select=reference needs reference=<photo of the person to swap>")
        for name in ("segment_frames", "batch_size"):
            if getattr(self.video, name) < 1:
                raise ValueError(f"video.{name} must be >= 1, got {getattr(self.video, name)}")
        if self.video.workers < 0:
            raise ValueError(f"video.workers must be >= 0, got {self.video.workers}")
        if self.c2pa.enabled and not (self.c2pa.sign_cert and self.c2pa.private_key):
            raise ValueError("C2PA signing needs both c2pa.sign_cert and c2pa.private_key")


class StageTimes:
    """Seconds spent in each stage of a video swap (decode, track, align, swap, paste, encode), summed over the
    threads that run them; ``with times("swap"): ...`` adds one block's wall time."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            with self._lock:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + dt

    def __repr__(self) -> str:
        return f"StageTimes({', '.join(f'{k}={v:.3f}s' for k, v in self.seconds.items())})"


@dataclass
class SwapSummary:
    """What a run did: outputs written, faces swapped, and what was skipped and why."""

    outputs: list[str] = field(default_factory=list)
    images: int = 0  # still images written
    videos: int = 0  # videos written
    frames: int = 0  # images + video frames written (a resumed video counts all of its frames)
    faces: int = 0  # faces swapped
    frames_without_face: int = 0  # frames copied unchanged (videos) or images skipped for lack of a face
    skipped: dict[str, str] = field(default_factory=dict)  # input -> reason (unreadable, no face, exists ...)
    resumed_segments: int = 0
    stages: StageTimes = field(default_factory=lambda: StageTimes())  # videos: seconds per stage of the swap


    def __str__(self) -> str:
        return (f"wrote {self.images} images and {self.videos} videos; swapped {self.faces} faces in "
                f"{self.frames} images/frames; {self.frames_without_face} without a face; "
                f"{len(self.skipped)} inputs skipped")
