"""Preparing a face dataset: detect, align and crop the faces of photos and videos into a folder.

Command line: ``python -m faceswaplab.prepare`` (:mod:`faceswaplab.prepare`). Python:
``prepare(input, output, **options) -> PrepareSummary`` with the options of :class:`PrepareOptions`.
Files: :mod:`.options` (options, summary, errors), :mod:`.items` (the work on one image or frame, run in worker
processes), :mod:`.output` (the output folder's state: resume and atomic appends), :mod:`.run` (the run).

Each input image or sampled video frame goes through: read (EXIF-transposed, converted to 8-bit RGB) -> detect
faces (on a downscaled copy when larger than ``detect_size``; retried on a padded copy when nothing is found
and ``pad=auto``) -> 68 landmarks at full resolution -> choose faces (``select``) -> similarity-align to the
canonical template (``faces.template``, fitted on the INNER landmarks) -> crop at ``size`` with ``margin``.

Output layout::

    <output>/faces/<relative/path/stem>[_f<frame:06d>]_<k>.png   aligned crops, RGB (k: face rank by box area)
    <output>/index.jsonl     one JSON object per face written:
                             {"crop": path relative to <output>, "source": input file, "identity": name,
                              "frame": int | null, "fps": float | null,
                              "time": seconds | null, "face": k, "box": [x0, y0, x1, y1], "score": float,
                              "landmarks": 68x2 in the original image, "landmarks_crop": 68x2 in crop pixels,
                              "transform": 2x3 original -> crop, "size": int}
    <output>/report.jsonl    one JSON object per skipped input, frame or face:
                             {"source", "frame", "reason", "detail"[, "face", "box"]}; reasons: unreadable,
                             too_small, no_face, face_too_small, extra_face, no_match, error
    <output>/prepare.yaml    the resolved options
    <output>/progress.jsonl  resume bookkeeping: one line per finished item and per finished file
    <output>/shards/         with format=shards: the crops as litdata chunks (faceswaplab.data.datasets.shards)
    <output>/chunks/         with chunk=i num_chunks=n: each job's rows, until merge=true joins them (.chunks)

Every file is written atomically; index and report rows are appended only once their item is finished, and a
rerun skips finished files and frames, so an interrupted run resumes without duplicates or half-written files.
"""

from faceswaplab.data.preparation.options import (NoFaceError, OutputError, PrepareError, PrepareOptions,
                                                  PrepareSummary)
from faceswaplab.data.preparation.run import prepare

__all__ = ["NoFaceError", "OutputError", "PrepareError", "PrepareOptions", "PrepareSummary", "prepare"]
