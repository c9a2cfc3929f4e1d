import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESWAPLAB_MEDIA", ROOT.parent / "shared" / "media"))


# The tests run small tensors one sample at a time, where intra-op threads only add overhead; one thread also
# keeps timings steady when DataLoader workers or subprocesses share the cores.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def media() -> Path:
    """The shared real-face media folder (../shared/media, or $FACESWAPLAB_MEDIA)."""
    if not MEDIA.is_dir():
        pytest.skip(f"shared media not found at {MEDIA} (set FACESWAPLAB_MEDIA)")
    return MEDIA


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real photo with one face, (512, 512, 3) uint8 RGB."""
    from skimage import data

    return data.astronaut()


def compose_train(*overrides: str, run_dir=None):
    """Compose conf/train.yaml as the command line would (``faceswaplab.config.compose``)."""
    from faceswaplab.config import compose

    return compose("train", overrides, output_dir=run_dir)



# Small runs: 32 px synthetic faces, batches of 4, 3 batches an epoch, no worker processes, no progress bar.
SMALL = ["data.image_size=32", "data.batch_size=4", "data.num_workers=0", "data.persistent_workers=false",
         "data.A.num_samples=40", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
         "trainer.enable_progress_bar=false", "callbacks.preview.pairs=2"]


def method_class(name: str):
    """The class that ``conf/method/<name>.yaml`` builds."""
    from hydra.utils import get_class

    from faceswaplab.methods.build import method_config

    return get_class(method_config(name)._target_)


def tiny(method: str, *overrides: str) -> list[str]:
    """Overrides of conf/train.yaml for a small run of `method` with its class's ``tiny`` settings."""
    settings = [f"method.{k}={v}" for k, v in method_class(method).tiny.items()]
    return [f"method={method}", *settings, *SMALL, *overrides]


def trained_rows() -> list[str]:
    """``~methods.<name>`` for every row of conf/benchmark.yaml that trains a model (for minutes): tests drop them."""
    from omegaconf import OmegaConf

    rows = OmegaConf.load(ROOT / "conf" / "benchmark.yaml").methods
    return [f"~methods.{name}" for name, row in rows.items() if "train" in row]


def train_cli(run_dir, *overrides: str, env: dict | None = None, **kw):
    """``python -m faceswaplab.train`` into `run_dir` as a subprocess (stdout and stderr merged, text); `env`: extra
    environment variables."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "faceswaplab.train", f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
