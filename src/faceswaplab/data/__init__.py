"""Face data: sources of aligned crops, the batch schema, augmentations and the Lightning data module.

The synthetic renderer lives in :mod:`faceswaplab.data.synthetic`; raw inputs are read by
:mod:`faceswaplab.data.sources` and prepared by :mod:`faceswaplab.prepare`.

Names are imported on first use, so that ``faceswaplab.data.synthetic`` or ``faceswaplab.data.sources`` do not
pull in Lightning.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "faceswaplab.data.augment": (
        "Augment", "apply_flow", "color_jitter", "random_affine", "random_flip", "random_warp", "warp_points",
    ),
    "faceswaplab.data.datamodule": ("FaceDataModule",),
    "faceswaplab.data.samples": ("SampleRef",),
    "faceswaplab.data.samplers": ("ManySampler", "PairSampler", "worker_init"),
    "faceswaplab.data.datasets": (
        "FaceDataset", "FaceSource", "FacesAsIdentities", "HeldOut", "IdentitySet", "ManyDataset", "PairDataset",
        "Pool", "PreparedIdentities", "PreparedIdentity", "RawIdentities", "RawIdentity", "ShardedIdentities",
        "ShardedIdentity",
        "SyntheticIdentities", "SyntheticIdentity", "read_index",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'faceswaplab.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
