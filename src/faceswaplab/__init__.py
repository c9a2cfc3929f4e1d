"""faceswaplab: train, run and compare face-swap method families behind one API.

Conventions used throughout the library:

* Image tensors are ``(B, 3, H, W)`` float in ``[-1, 1]``; numpy images are ``(H, W, 3)`` uint8 RGB.
* Landmarks are 68 points in iBUG-300W order, ``(..., 68, 2)`` float ``(x, y)`` in **pixel coordinates of the image
  they belong to**, pixel centres at integers (see :mod:`faceswaplab.faces.template`).
* The **source** gives the identity; the **target** gives pose, expression and background; a swap outputs the
  target with the source's identity.

Stable names: ``faceswaplab.load`` (a saved method, ready to swap), ``SyntheticFaces``, ``FaceDataModule``,
``FaceSwapMethod``, ``load_method``, ``swap_media``, ``build_metrics``, ``compose`` (a Hydra config, as the command
line builds it) and ``run_benchmark`` (and the functions ``faceswaplab.train.train`` and
``faceswaplab.prepare.prepare``, whose modules carry the same names).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceswaplab.methods.base import FaceSwapMethod

__version__ = "0.1.0"

# Stable public names, imported on first use so that `import faceswaplab` stays light.
_LAZY = {
    "SyntheticFaces": "faceswaplab.data.synthetic",
    "FaceDataModule": "faceswaplab.data.datamodule",
    "FaceSwapMethod": "faceswaplab.methods.base",
    "load_method": "faceswaplab.methods.base",
    "swap_media": "faceswaplab.swapping",
    "build_metrics": "faceswaplab.metrics",
    "compose": "faceswaplab.config",
    "run_benchmark": "faceswaplab.benchmarking",
}

__all__ = ["__version__", "load", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'faceswaplab' has no attribute {name!r}")


def load(path: str | os.PathLike, device: str = "auto") -> FaceSwapMethod:
    """A saved method ready to swap: `path` is a run directory (its last checkpoint) or a ``.ckpt`` file.

    The checkpoint is verified against its recorded SHA-256 and unpickled weights-only, so a file from elsewhere
    cannot run code (:mod:`faceswaplab.checkpoints`; a bad one raises ``CheckpointError``). The method comes back
    in eval mode on `device` (``"auto"``: CUDA when available, else CPU); its
    :meth:`~faceswaplab.methods.FaceSwapMethod.swap` takes tensors, numpy or PIL images.

    Train a tiny DeepFakes autoencoder for one step on 32 px synthetic faces, then load and use it:

    >>> import tempfile
    >>> import faceswaplab as fsl
    >>> from faceswaplab.config import compose
    >>> from faceswaplab.train import train
    >>> run = tempfile.TemporaryDirectory()
    >>> overrides = ["method=deepfakes", "method.enc_width=8", "method.latent=32", "method.dense_channels=32",
    ...              "method.code_channels=16", "method.dec_width=16", "data.image_size=32", "data.batch_size=2",
    ...              "data.num_workers=0", "data.persistent_workers=false", "data.A.num_samples=10",
    ...              "trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
    ...              "trainer.enable_progress_bar=false", "callbacks.preview.pairs=0", "~logger"]
    >>> _ = train(compose("train", overrides, output_dir=run.name))
    >>> method = fsl.load(run.name, device="cpu")
    >>> type(method).__name__, method.training, method.device.type
    ('DeepFakes', False, 'cpu')
    >>> face = fsl.SyntheticFaces(seed=0).sample(0, 0, size=32).image  # (32, 32, 3) uint8, a face of A
    >>> method.swap(face, direction="AtoB").shape
    (32, 32, 3)
    >>> run.cleanup()
    """
    import torch

    from faceswaplab.methods.base import load_method
    from faceswaplab.runs import RunDir

    ckpt = RunDir.checkpoint_of(path)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return load_method(ckpt, map_location=device).to(device).eval()
