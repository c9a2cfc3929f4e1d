"""The run: an image, a video or a folder of them into the output, with its checks and its summary."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

from faceswaplab.io import ImageReadError, write_json
from faceswaplab.provenance import IMAGE_FORMATS
from faceswaplab.swapping.images import swap_image
from faceswaplab.swapping.options import FOLDER_MARKER, NoFaceError, SwapError, SwapOptions, SwapSummary
from faceswaplab.swapping.swapper import FaceSwapper
from faceswaplab.swapping.video import swap_video

log = logging.getLogger("faceswaplab.swap")


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
                swap_video(swapper, src, dst, summary, on_progress)
            else:
                swap_image(swapper, src, dst, summary)
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
                swap_video(swapper, path, out, summary, on_progress)
            else:
                swap_image(swapper, path, out, summary)
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
