"""Where the pretrained weights of the metrics live, and the errors raised when they are missing.

Every metric checks for its files *before* the library that owns them tries to download them, so an offline
machine gets a clear :class:`WeightsUnavailable` naming the file and where to put it instead of a network error.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from faceswaplab.faces.backends import MissingWeightsError


class MetricUnavailable(RuntimeError):
    """A metric cannot run on this machine; `reason` says why in one line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class WeightsUnavailable(MetricUnavailable, MissingWeightsError):
    """Pretrained weights a metric needs are not on this machine. `path` is where the file is expected."""

    def __init__(self, what: str, path: str | os.PathLike, how: str):
        self.path = Path(path)
        super().__init__(f"{what}: weights file {self.path.name} not found at {self.path}. {how}")


class DependencyUnavailable(MetricUnavailable, ImportError):
    """A Python package a metric needs is not installed."""


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints``, the cache of ``torch.hub.load_state_dict_from_url`` (torchvision,
    torch-fidelity)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``: read at call time."""
    default = os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", default)))


def cache_dir() -> Path:
    """faceswaplab's own cache (weights it produces itself): ``$FACESWAPLAB_CACHE`` or ``~/.cache/faceswaplab``."""
    return Path(os.path.expanduser(os.getenv("FACESWAPLAB_CACHE", "~/.cache/faceswaplab")))


def _run_once(snippet: str) -> str:
    return f"Run once on a machine with internet (`python -c \"{snippet}\"`) and copy the file to that path"


def require_package(module: str, pip_name: str, purpose: str) -> None:
    """Raise :class:`DependencyUnavailable` unless `module` can be imported (checked without importing it)."""
    if importlib.util.find_spec(module) is None:
        raise DependencyUnavailable(f"{purpose} needs the package {pip_name!r}, which is not installed "
                                    f"(pip install {pip_name})")


def torchvision_weights(arch: str) -> Path:
    """Cached ImageNet weights of torchvision's `arch` ("alexnet", "vgg16", "squeezenet1_1"); raises if missing."""
    from urllib.parse import urlparse

    import torchvision.models as tvm

    enums = {"alexnet": tvm.AlexNet_Weights, "vgg16": tvm.VGG16_Weights, "squeezenet1_1": tvm.SqueezeNet1_1_Weights}
    url = enums[arch].IMAGENET1K_V1.url
    path = torch_hub_checkpoints() / os.path.basename(urlparse(url).path)
    if not path.is_file():
        raise WeightsUnavailable(
            f"torchvision {arch} (LPIPS backbone)", path,
            _run_once(f"import torchvision; torchvision.models.{arch}(weights='IMAGENET1K_V1')")
            + " (or set TORCH_HOME to a cache that has it).")
    return path


INCEPTION_FID_FILE = "weights-inception-2015-12-05-6726825d.pth"


def inception_fid_weights() -> Path:
    """torch-fidelity's FID Inception weights in the torch hub cache; raises if the package or the file is missing."""
    require_package("torch_fidelity", "torch-fidelity", "FID/KID with the Inception feature extractor")
    path = torch_hub_checkpoints() / INCEPTION_FID_FILE
    if not path.is_file():
        raise WeightsUnavailable(
            "FID/KID Inception-v3 (torch-fidelity)", path,
            _run_once("from torchmetrics.image.fid import FrechetInceptionDistance as F; F()")
            + ", or pass weights_path=<file>.")
    return path


FACENET_FILES = {"vggface2": "20180402-114759-vggface2.pt", "casia-webface": "20180408-102900-casia-webface.pt"}


def facenet_weights(pretrained: str = "vggface2") -> Path:
    """facenet-pytorch's InceptionResnetV1 weights. facenet-pytorch caches in ``$TORCH_HOME/checkpoints`` (not in
    ``hub/checkpoints`` like torchvision); raises :class:`WeightsUnavailable` if the file is not there."""
    if pretrained not in FACENET_FILES:
        raise ValueError(f"facenet weights must be one of {sorted(FACENET_FILES)}, got {pretrained!r}")
    path = torch_home() / "checkpoints" / FACENET_FILES[pretrained]
    if not path.is_file():
        raise WeightsUnavailable(
            f"facenet-pytorch InceptionResnetV1 ({pretrained})", path,
            _run_once(f"from facenet_pytorch import InceptionResnetV1 as M; M(pretrained='{pretrained}')") + ".")
    return path
