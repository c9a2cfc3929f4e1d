"""The CUDA path of every method: mixed-precision training with channels-last networks, swapping on the GPU, a
checkpoint that loads on a machine without one, and DDP over NCCL. Skipped where there is no GPU (as in CI); on a GPU
machine: ``python -m pytest tests/test_gpu.py``."""

import math

import numpy as np
import pytest
import torch
from conftest import compose_train, tiny, train_cli
from test_method_contract import faces, swap

import faceswaplab as fsl
from faceswaplab.methods.build import method_names
from faceswaplab.training import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("name", method_names())
def test_trains_with_mixed_precision_and_swaps_on_the_gpu(name, precision, tmp_path):
    out = train(compose_train(*tiny(name, "trainer=gpu", f"trainer.precision={precision}", "trainer.max_epochs=1",
                                    "~logger"), run_dir=tmp_path))
    losses = {k: v for k, v in out["metrics"].items() if k.startswith("train/")}
    assert all(math.isfinite(v) for v in losses.values()), losses

    targets, (source,) = faces(2), faces(1, identity=1)
    lms = np.stack([f.landmarks for f in targets])
    batch = np.stack([f.image for f in targets])
    kw = dict(target_landmarks=lms, source_landmarks=source.landmarks)
    on_gpu = fsl.load(tmp_path, device="cuda")
    assert next(on_gpu.parameters(), torch.empty(0, device="cuda")).is_cuda
    a = swap(on_gpu, batch, source.image, **kw)
    b = swap(fsl.load(tmp_path, device="cpu"), batch, source.image, **kw)  # the same checkpoint without a GPU
    assert a.shape == b.shape == batch.shape and a.dtype == np.uint8
    # fp32 inference on both; cuDNN's TF32 convolutions and other kernels leave a level or two of difference
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0


def test_ddp_over_nccl(tmp_path):
    proc = train_cli(tmp_path, *tiny("cyclegan", "trainer=ddp", "trainer.devices=1", "trainer.max_epochs=1"))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
