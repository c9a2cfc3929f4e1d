"""Identity of a few-shot meta-learnt model against the same model fine-tuned on the person (experiments/fewshot.md).

    python experiments/scripts/fewshot_finetune.py <meta run> <fine-tuned run> [out.png]

The person is synthetic identity 0 of population 0 (the benchmark's A, held out of meta-learning; the fine-tuning's
8 training renders are its shots); the drivers are 16 test renders of identity 1 (B). Both models draw A with B's
poses; the benchmark's identity embedder (population 1000, never a training signal) scores the cosine of each output
to A's mean embedding over 16 other renders, beside the drivers themselves (the floor) and A's renders (the ceiling).
"""

import sys

import numpy as np
import torch
from torchvision.utils import save_image

import faceswaplab as fsl
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.metrics import predict_landmarks
from faceswaplab.metrics.embedders import SyntheticEmbedder


def renders(identity, indices):
    gen = SyntheticFaces(seed=0, num_identities=8)  # as SyntheticIdentity renders population 0
    fs = [gen.sample(identity, i, size=64) for i in indices]
    images = torch.stack([torch.from_numpy(f.image).permute(2, 0, 1).float() / 127.5 - 1 for f in fs])
    return images, torch.stack([torch.from_numpy(f.landmarks).float() for f in fs])


meta, tuned = fsl.load(sys.argv[1], device="cpu"), fsl.load(sys.argv[2], device="cpu")
shots, shot_lms = renders(0, range(8))  # the fine-tuning's shots (its train split: renders 0..7 of 40)
drivers, driver_lms = renders(1, range(1000, 1016))
gallery, _ = renders(0, range(2000, 2016))
emb = SyntheticEmbedder()
centre = torch.nn.functional.normalize(emb.embed(gallery, predict_landmarks(gallery, 128)).mean(0), dim=0)
outputs = {
    "drivers (B, unchanged)": drivers,
    "meta-learnt, 8 shots": meta.swap(drivers, shots, target_landmarks=driver_lms, source_landmarks=shot_lms, shots=8),
    "meta-learnt, 1 shot": meta.swap(drivers, shots[:1], target_landmarks=driver_lms, source_landmarks=shot_lms[:1]),
    "fine-tuned on the 8 shots": tuned.swap(drivers, target_landmarks=driver_lms),
    "A's own renders": renders(0, range(3000, 3016))[0],
}
for name, x in outputs.items():
    cos = emb.embed(x.detach(), predict_landmarks(x.detach(), 128)) @ centre
    print(f"| {name} | {cos.mean():.3f} ± {cos.std() / np.sqrt(len(cos)):.3f} |")
if len(sys.argv) > 3:
    rows = [outputs[k][:8].detach() for k in ("drivers (B, unchanged)", "meta-learnt, 8 shots", "fine-tuned on the 8 shots")]
    save_image(torch.cat([shots, *rows]) * 0.5 + 0.5, sys.argv[3], nrow=8, padding=1)
