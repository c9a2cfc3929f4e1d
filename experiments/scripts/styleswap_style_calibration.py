"""How well the style loss's layers tell the identities apart: the patch style loss of photos of identity 0 and of
identity 1 against a style set of 16 other photos of identity 1 (the 4 closest in pose per photo, position
search), per layer of the offline face network's stand-in. A layer is useful to the style loss when the other
identity's distance is well above the own identity's. Synthetic faces, seed 0, 64 px.

    PYTHONPATH=src python experiments/scripts/styleswap_style_calibration.py
"""

import numpy as np
import torch

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.losses.style import StyleFeatures, patch_style_loss

torch.set_num_threads(1)
faces = SyntheticFaces(seed=0)


def batch(identity, samples):
    s = [faces.sample(identity, k, size=64) for k in samples]
    x = torch.tensor(np.stack([f.image for f in s])).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(np.stack([f.landmarks for f in s])).float()


net = StyleFeatures("face")
bank, bank_lms = batch(1, range(100, 116))
with torch.no_grad():
    f_bank = net(bank, bank_lms)
    for who in (0, 1):
        x, lms = batch(who, range(200, 216))
        f_x = net(x, lms)
        nearest = ((lms[:, None] - bank_lms[None]) ** 2).sum((2, 3)).topk(4, largest=False).indices
        row = {n: round(float(patch_style_loss(f_x[n], f_bank[n][nearest], 3, "position")), 3) for n in f_x}
        print(f"identity {who} against identity 1's photos: {row}")
