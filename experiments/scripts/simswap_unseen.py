"""Swap identities a one-shot run never saw and write a grid: sources down the left, targets along the top.

    python experiments/scripts/simswap_unseen.py <run dir> <out.png> [--seed 0] [--identities 4] [--size 64]

Faces are test renders (indices 2250..2499 of 2500) of population `seed`'s first `identities` identities. Prints
the benchmark embedder's (population 1000) cosine similarity to the source, of the swaps and of the targets
left unchanged, for the off-diagonal cells (source and target of different identities).
"""

import argparse

import numpy as np
import torch

import faceswaplab as fsl
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.images import make_grid
from faceswaplab.io import write_image
from faceswaplab.metrics.embedders import SyntheticEmbedder


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--identities", type=int, default=4)
    p.add_argument("--size", type=int, default=64)
    a = p.parse_args()
    method = fsl.load(a.run, device="cpu")
    faces = SyntheticFaces(seed=a.seed)
    n = a.identities
    renders = [faces.sample(i, 2250 + 7 * i, size=a.size) for i in range(n)]
    imgs = torch.stack([torch.from_numpy(r.image).permute(2, 0, 1).float() / 127.5 - 1 for r in renders])
    lms = torch.from_numpy(np.stack([r.landmarks for r in renders])).float()
    cells = [torch.full_like(imgs[0], -1.0), *imgs]  # top row: blank, then the targets
    swaps = {}
    with torch.no_grad():
        for s in range(n):
            out = method.swap(imgs, imgs[s:s + 1], target_landmarks=lms, source_landmarks=lms[s:s + 1])
            swaps[s] = out
            cells += [imgs[s], *out]
    write_image(a.out, make_grid(torch.stack(cells), nrow=n + 1))
    emb = SyntheticEmbedder()
    e_src = emb.embed(imgs, lms)
    swap_sim, target_sim = [], []
    for s in range(n):
        e_out = emb.embed(swaps[s], lms)
        for t in range(n):
            if t != s:
                swap_sim.append(float(e_out[t] @ e_src[s]))
                target_sim.append(float(e_src[t] @ e_src[s]))
    print(f"identity cosine to the source (metric embedder, {len(swap_sim)} cross-identity cells): "
          f"swap {np.mean(swap_sim):.3f}, target unchanged {np.mean(target_sim):.3f}")


if __name__ == "__main__":
    main()
