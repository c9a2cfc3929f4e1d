"""The batch schema every method reads.

A *pair* batch (two identities, ``mode="pair"``) holds, for each side ``X`` in ``{"A", "B"}``:

==================  ======================  ==========================================================
key                 shape, dtype            meaning
==================  ======================  ==========================================================
``image_X``         (N, 3, H, W) float32    aligned face crops in [-1, 1]
``landmarks_X``     (N, 68, 2) float32      iBUG-68 points, (x, y) pixel coordinates of the crop
``mask_X``          (N, 1, H, W) float32    face region (jaw and forehead hull) in [0, 1]
``parts_X``         (N, 2, H, W) float32    eye (channel 0) and mouth (channel 1) regions in [0, 1]
``identity_X``      (N,) int64              identity id (an index into the data module's identities)
``index_X``         (N,) int64              sample index within that identity's split
==================  ======================  ==========================================================

Synthetic data adds the renderer's ground truth: ``pose_X`` (N, 3) float32 yaw, pitch, roll in degrees, and
``expression_X`` (N, 4) float32 mouth-open, smile, brow-raise, blink in [0, 1]; with occluders (``occlusion`` > 0)
also ``visible_X`` (N, 1, H, W) float32, the face region less what the occluder hides (ground truth for the
occlusion-aware masks of :mod:`faceswaplab.faces.occlusion`).

A *many-identity* batch (``mode="many"``, used by the benchmark) holds the same keys without the ``_X`` suffix.
"""

from __future__ import annotations

SIDES = ("A", "B")
IMAGE, LANDMARKS, MASK, PARTS, IDENTITY, INDEX, POSE, EXPRESSION, VISIBLE = (
    "image", "landmarks", "mask", "parts", "identity", "index", "pose", "expression", "visible",
)
PART_EYES, PART_MOUTH = 0, 1
EXPRESSION_NAMES = ("mouth_open", "smile", "brow_raise", "blink")


def key(name: str, side: str | None = None) -> str:
    """The batch key of field `name` for `side` ("A", "B"), or the unsuffixed key for many-identity batches."""
    return name if side is None else f"{name}_{side}"
