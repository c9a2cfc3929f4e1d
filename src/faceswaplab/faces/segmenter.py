"""The visible-face segmenter: a small U-Net that predicts which pixels of an aligned face crop show the face (not
an occluder, hair or background), trained on occluded synthetic renders.

The model trained with :data:`SEGMENTER_TRAIN` ships in ``faceswaplab/assets`` (about 0.4 MB); other settings are
trained into faceswaplab's cache. Make it (seeded: reruns give the same weights; a few minutes on a 2-core CPU)::

    python -m faceswaplab.faces.segmenter --train
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceswaplab.faces.backends import MissingWeightsError
from faceswaplab.nets.unet import UnetGenerator

# seed 2000: a population of identities disjoint from the benchmark's (seed 0) and the embedder's (seed 1000)
SEGMENTER_TRAIN = dict(seed=2000, identities=48, renders=100, size=64, occlusion=0.85, epochs=14, batch=32,
                       lr=3e-3, width=8, downs=4, version=1)
ASSETS = Path(__file__).resolve().parents[1] / "assets"
TRAIN_COMMAND = "python -m faceswaplab.faces.segmenter --train"


def segmenter_weights_path(config: dict | None = None) -> Path:
    """Where the segmenter trained with `config` lives (named by a hash of the config): the copy shipped in the
    package when there is one, else faceswaplab's cache (where training writes it)."""
    from faceswaplab.metrics.weights import cache_dir

    cfg = dict(SEGMENTER_TRAIN, **(config or {}))
    key = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:10]
    name = f"visible_segmenter-{key}.pt"
    return ASSETS / name if (ASSETS / name).is_file() else cache_dir() / name


def segmenter_net(cfg: dict) -> UnetGenerator:
    """The pix2pix U-Net, narrow and shallow: (B, 3, S, S) in [-1, 1] -> (B, 1, S, S) in [-1, 1] (tanh)."""
    return UnetGenerator(3, 1, num_downs=int(cfg["downs"]), width=int(cfg["width"]), norm="batch", dropout=0.0)


def probability(out: torch.Tensor) -> torch.Tensor:
    """The U-Net's tanh output -> probability of 'visible face' in [0, 1]."""
    return (out + 1.0) * 0.5


class VisibleFaceSegmenter:
    """``segmenter(images (B, 3, H, W) in [-1, 1]) -> (B, 1, H, W)`` probability that a pixel shows the face.

    Crops are resized to the network's size and back, so any aligned crop size works. A missing model raises
    :class:`~faceswaplab.faces.backends.MissingWeightsError` naming the file and the command that makes it.
    """

    def __init__(self, weights_path=None, device: str | torch.device = "cpu", config: dict | None = None):
        path = Path(weights_path) if weights_path is not None else segmenter_weights_path(config)
        if not path.is_file():
            raise MissingWeightsError(f"visible-face segmenter: weights file {path.name} not found at {path}. "
                                      f"Make it (seeded, a few minutes on CPU): {TRAIN_COMMAND}")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        self.config = ckpt["config"]
        self.size = int(self.config["size"])
        self.device = torch.device(device)
        self.net = segmenter_net(self.config)
        self.net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
        self.net.eval().to(self.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        H, W = images.shape[-2:]
        x = images.to(self.device, torch.float32)
        if (H, W) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        p = probability(self.net(x))
        if (H, W) != (self.size, self.size):
            p = F.interpolate(p, size=(H, W), mode="bilinear", align_corners=False)
        return p.to(images.device)


def render_set(seed: int, identities: int, renders: int, size: int, occlusion: float, first: int = 0):
    """Occluded synthetic renders: images (N, 3, S, S) in [-1, 1], visible masks (N, 1, S, S), face masks."""
    from faceswaplab.data.synthetic import SyntheticFaces

    faces = SyntheticFaces(seed, identities, occlusion=occlusion)
    rs = [faces.sample(i, first + k, size) for i in range(identities) for k in range(renders)]
    x = torch.as_tensor(np.stack([r.image for r in rs])).permute(0, 3, 1, 2).float() / 127.5 - 1
    visible = torch.as_tensor(np.stack([r.visible for r in rs]))[:, None]
    return x, visible, rs


def _augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
    """Mirror (image and mask), brightness/contrast jitter and noise (image only)."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    x, y = torch.where(flip[:, None, None, None], x.flip(-1), x), torch.where(flip[:, None, None, None], y.flip(-1), y)
    gain = 1 + 0.2 * (torch.rand(len(x), 1, 1, 1, generator=gen) * 2 - 1)
    bias = 0.15 * (torch.rand(len(x), 1, 1, 1, generator=gen) * 2 - 1)
    return (x * gain + bias + 0.03 * torch.randn(x.shape, generator=gen)).clamp(-1, 1), y


def train_segmenter(config: dict | None = None, verbose: bool = True) -> Path:
    """Train the segmenter (binary cross-entropy against the renders' visible masks) and save it atomically to
    :func:`segmenter_weights_path`'s name in the cache. Seeded, so reruns give the same model."""
    from faceswaplab.io import atomic_path
    from faceswaplab.metrics.weights import cache_dir

    cfg = dict(SEGMENTER_TRAIN, **(config or {}))
    torch.manual_seed(cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    x_all, y_all, _ = render_set(cfg["seed"], cfg["identities"], cfg["renders"], cfg["size"], cfg["occlusion"])
    net = segmenter_net(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=1e-4)
    steps = cfg["epochs"] * math.ceil(len(x_all) / cfg["batch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg["lr"], total_steps=steps, pct_start=0.15)
    net.train()
    for epoch in range(cfg["epochs"]):
        perm = torch.randperm(len(x_all), generator=gen)
        total = 0.0
        for s in range(0, len(perm), cfg["batch"]):
            b = perm[s:s + cfg["batch"]]
            x, y = _augment(x_all[b], y_all[b], gen)
            loss = F.binary_cross_entropy(probability(net(x)).clamp(1e-5, 1 - 1e-5), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(b)
        if verbose:
            print(f"epoch {epoch + 1}/{cfg['epochs']}: loss {total / len(x_all):.4f}", flush=True)
    net.eval()
    path = cache_dir() / segmenter_weights_path(config).name
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"config": cfg, "state_dict": net.state_dict()}, tmp)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m faceswaplab.faces.segmenter", description=__doc__.split("\n")[0])
    parser.add_argument("--train", action="store_true", help="train the default segmenter into the cache")
    args = parser.parse_args(argv)
    if args.train:
        print(f"trained: {train_segmenter()}")
    else:
        print(segmenter_weights_path())


if __name__ == "__main__":
    main()
