"""Step-for-step study of the DeepFakes autoencoder on pre-rendered synthetic faces (experiments/defaults_5min.md).

Renders 4000 augmented training faces and 64 validation faces per identity once (``--render``; ``--aligned`` fits
each to the template by its landmarks first), then trains the method's networks and loss in a plain loop for a
fixed number of steps and writes ``<out>/<name>.png`` (per face: original | reconstruction | swap, pasted through
the learned mask) and a line of ``<out>/results.jsonl`` (validation masked L1 of the reconstructions, face and eyes).

    python experiments/scripts/deepfakes_steps.py --render --out /tmp/dfp                  # data.pt
    python experiments/scripts/deepfakes_steps.py --render --aligned --out /tmp/dfp        # data_aligned.pt
    python experiments/scripts/deepfakes_steps.py base --out /tmp/dfp
    python experiments/scripts/deepfakes_steps.py aligned --data data_aligned.pt --out /tmp/dfp
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.utils import save_image

from faceswaplab.data import FaceDataModule, SyntheticIdentity
from faceswaplab.data.augment import Augment, random_warp
from faceswaplab.faces.alignment import alignment_transform, warp
from faceswaplab.losses import masked_l1, ssim_loss
from faceswaplab.nets import Decoder, Encoder

KEYS = ("image", "mask", "parts")


def render(out: Path, aligned: bool) -> None:
    aug = Augment(flip=0.5, rotate=5.0, scale=0.05, translate=0.03, brightness=0.1, contrast=0.1, saturation=0.1)
    dm = FaceDataModule(A=SyntheticIdentity(0), B=SyntheticIdentity(1), image_size=64, augment=aug)
    dm.setup()

    def item(ds, i):
        it = ds[i]
        if not aligned:
            return {k: it[k] for k in KEYS}
        m = alignment_transform(it["landmarks"].numpy(), 64)
        x = torch.cat([it[k] for k in KEYS]).permute(1, 2, 0).numpy().astype(np.float32)
        y = torch.from_numpy(warp(x, m, 64)).permute(2, 0, 1)
        return {"image": y[:3], "mask": y[3:4], "parts": y[4:6]}

    data = {}
    for split, n, seeded in (("train", 4000, True), ("val", 64, False)):
        for side, ds in zip("AB", (dm.datasets[split].a, dm.datasets[split].b)):
            items = [item(ds, (i % len(ds), 1000 + i) if seeded else i) for i in range(n)]
            data[side if split == "train" else "val" + side] = {k: torch.stack([x[k] for x in items]) for k in KEYS}
    torch.save(data, out / ("data_aligned.pt" if aligned else "data.pt"))


def train(a, out: Path) -> None:
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    data = torch.load(out / a.data)
    enc = Encoder(64, a.enc, a.latent, a.dense, a.code)
    decs = nn.ModuleDict({x: Decoder(64, a.dec, a.code, mask=True) for x in "AB"})
    params = [*enc.parameters(), *decs.parameters()]
    opt = torch.optim.Adam(params, a.lr, betas=(a.beta1, 0.999))
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    for _ in range(a.steps):
        total = 0.0
        for x in "AB":
            idx = torch.randint(0, data[x]["image"].shape[0], (a.batch,), generator=g)
            real, mask, parts = (data[x][k][idx] for k in KEYS)
            warped = random_warp(real, a.warp, 5)[0] if a.warp > 0 else real
            face, pred_mask = decs[x](enc(warped))
            weight = 1 + 2 * parts[:, :1] + parts[:, 1:2]  # eyes x3, mouth x2 as in conf/method/deepfakes.yaml
            total = total + masked_l1(face, real, mask, weight) + ssim_loss(face * mask, real * mask) \
                + (pred_mask - mask).abs().mean()
        opt.zero_grad()
        total.backward()
        opt.step()
    seconds = time.time() - t0
    res, tiles = {}, []
    with torch.no_grad():
        for x, y in (("A", "B"), ("B", "A")):
            real, mask, parts = (data["val" + x][k] for k in KEYS)
            face, m = decs[x](enc(real))
            res[f"rec_l1_{x}"] = round(masked_l1(face, real, mask).item(), 4)
            res[f"eye_l1_{x}"] = round(masked_l1(face, real, parts[:, :1]).item(), 4)
            sw, sm = decs[y](enc(real[:8]))
            for i in range(8):
                tiles += [real[i], m[i] * face[i] + (1 - m[i]) * real[i], sm[i] * sw[i] + (1 - sm[i]) * real[i]]
    save_image(torch.stack(tiles) * 0.5 + 0.5, out / f"{a.name}.png", nrow=6, padding=1)
    row = {"name": a.name, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}, "sec_per_step": round(seconds / a.steps, 3), **res}
    print(json.dumps(row))
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", default="base")
    p.add_argument("--out", type=Path, default=Path("/tmp/dfp"))
    p.add_argument("--render", action="store_true")
    p.add_argument("--aligned", action="store_true")
    p.add_argument("--data", default="data.pt")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--warp", type=float, default=0.04)
    p.add_argument("--enc", type=int, default=32)
    p.add_argument("--latent", type=int, default=256)
    p.add_argument("--dense", type=int, default=256)
    p.add_argument("--code", type=int, default=64)
    p.add_argument("--dec", type=int, default=16)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.render:
        render(a.out, a.aligned)
    else:
        train(a, a.out)


if __name__ == "__main__":
    main()
