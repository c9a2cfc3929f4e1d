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

