"""Options, summary and errors of :func:`faceswaplab.data.preparation.prepare`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceswaplab.errors import FaceSwapLabError
from faceswaplab.faces import template

# Options that change what is written: a resumed run must use the same values.
OUTPUT_OPTIONS = ("input", "size", "margin", "backend", "select", "reference", "tolerance", "fps", "max_frames",
                  "layout", "identity", "identities", "min_size", "min_face_size", "detect_size", "pad", "border")


class PrepareError(FaceSwapLabError, RuntimeError):
    """The run cannot proceed or ended without a usable result; the message names the input and the report."""


class NoFaceError(PrepareError):
    """A source (identity) ended with no usable face."""


class OutputError(PrepareError):
    """Writing to the output folder failed (disk full, permissions): the run stops, to be resumed later."""


@dataclass
class PrepareOptions:
    """Options of :func:`prepare` (the same keys as ``conf/prepare.yaml``)."""

    size: int = 256  # crop side in pixels
    margin: float = template.DEFAULT_MARGIN  # extra context around the template framing
    backend: Any = "dlib"  # a name from conf/backend/, a config with _target_, or a FaceBackend (workers=1)
    detector: str | None = None  # overrides the backend's detector (dlib: hog | cnn; fan: sfd | dlib)
    upsample: int | None = None  # overrides the backend's upsampling (dlib: times the image is doubled)
    select: str = "largest"  # largest | reference | all
    reference: str | None = None  # photo of the person to keep, for select=reference
    tolerance: float = 0.6  # select=reference: largest descriptor distance still counted as the same person
    fps: float | None = None  # video frames sampled per second (None: every frame)
    max_frames: int | None = None  # at most this many sampled frames per video
    layout: str = "auto"  # folder inputs: auto | images (one identity) | identities (one folder each)
    identity: str | None = None  # identity name for a one-identity input (default: file stem / folder name)
    identities: Any = None  # identity folders to use, in order: a list or a text file (one name per line)
    min_size: int = 32  # images whose short side is smaller are skipped (too_small)
    min_face_size: int = 40  # faces whose box is narrower (original pixels) are skipped (face_too_small)
    detect_size: int = 1024  # images with a longer side are detected on a copy downscaled to this
    pad: Any = "auto"  # fraction of each side padded before detection; auto: retry with 0.5 when none found
    border: str = "replicate"  # how crops are filled beyond the image edge: replicate | reflect | constant
    workers: int = 0  # processes (0: all CPU cores); 1 runs in this process
    progress: bool = True  # show a progress bar
    require_faces: bool = True  # raise NoFaceError when an identity ends with no face
    overwrite: bool = False  # start afresh even if <output> holds a run with other options
    # folder (PNG crops + index.jsonl) | shards: also <output>/shards (litdata chunks), written at the end of a
    # whole run or of the merge
    format: str = "folder"
    # Spread over jobs (see .chunks): prepare slice `chunk` of `num_chunks` into <output>/chunks/, then merge.
    chunk: int | None = None
    num_chunks: int = 1
    merge: bool = False  # join the finished chunks into <output>/index.jsonl and report.jsonl


@dataclass
class PrepareSummary:
    """What a run left in the output folder (totals, including earlier runs it resumed)."""

    output: Path
    faces: int  # faces in index.jsonl
    items: int  # images and frames finished
    new_items: int  # of which finished in this run
    skipped: dict[str, int] = field(default_factory=dict)  # report rows per reason
    identities: dict[str, int] = field(default_factory=dict)  # faces per identity

    def __str__(self) -> str:
        skips = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        n = len(self.identities)
        return (f"prepared {self.faces} faces of {n} identit{'y' if n == 1 else 'ies'} from {self.items} "
                f"images/frames ({self.new_items} new) in {self.output}; skipped: {skips}; "
                f"see {self.output / 'report.jsonl'}")
