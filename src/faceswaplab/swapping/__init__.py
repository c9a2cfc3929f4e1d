"""Swapping faces in photos, folders and videos with a trained checkpoint or the landmark-warp baseline.

Command line: ``python -m faceswaplab.swap`` (:mod:`faceswaplab.swap`). Python: ``swap_media(input, output,
checkpoint=..., method=..., source=..., **options) -> SwapSummary``. Files: :mod:`.options` (options, summary,
errors), :mod:`.swapper` (one frame), :mod:`.images` (still images), :mod:`.video` (resumable videos),
:mod:`.media` (the run over a file or a folder); face tracking is :mod:`faceswaplab.faces.tracking`.

Per frame: detect faces (``backend``, dlib HOG by default) -> choose them (``select=largest``, ``reference=<photo>``
for the face closest in identity by dlib's descriptor, or ``select=all``) -> in videos, track each chosen face and
smooth its landmarks over time (one-euro filter, reset on large jumps) -> align to the canonical template at the
method's crop size -> swap the crop with the method -> face-hull mask from the target's landmarks (eroded and
blurred by fractions of the face width) -> colour transfer -> paste back through the inverse similarity
(``blend=seamless`` Poisson clone under a feathered alpha, or ``feather``) -> label -> write.

Videos run faster than frame by frame, with the same frames out: between whole-frame searches (every
``video.redetect_every`` frames) the landmarks are refitted in the box the last frame's face gives, without the
detector (``video.track``; a refit that moved, grew or changed its look too much falls back to the detector);
the faces of ``video.batch_size`` frames go through the method in one call; ``video.workers`` threads paste them
back while the next batch is swapped, and decoding and encoding run in threads of their own.

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

from faceswaplab.swapping.images import save_image
from faceswaplab.swapping.media import swap_media
from faceswaplab.swapping.options import (C2paOptions, LabelOptions, MaskOptions, NoFaceError, SmoothingOptions,
                                          SwapError, SwapOptions, SwapSummary, VideoOptions)
from faceswaplab.swapping.swapper import FaceSwapper, load_swap_method

__all__ = ["C2paOptions", "FaceSwapper", "LabelOptions", "MaskOptions", "NoFaceError", "SmoothingOptions",
           "SwapError", "SwapOptions", "SwapSummary", "VideoOptions", "load_swap_method", "save_image", "swap_media"]
