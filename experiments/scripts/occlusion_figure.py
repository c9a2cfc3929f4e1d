"""The figure of experiments/occlusion.md: one held-out occluded render per occluder kind, its ground-truth visible
face, the segmenter's, and a landmark_warp swap pasted back with mask=hull and with mask=segment.

    python experiments/scripts/occlusion_figure.py --out experiments/figures/occlusion.png
"""

import argparse

import numpy as np
import torch

from faceswaplab.benchmarking.occlusion import TEST_FIRST
from faceswaplab.data.synthetic import OCCLUDERS, SyntheticFaces
from faceswaplab.faces.alignment import align_face
from faceswaplab.faces.occlusion import visibility
from faceswaplab.images import to_tensor
from faceswaplab.io import write_image
from faceswaplab.methods.build import build_method
from faceswaplab.swapping.options import SwapOptions
from faceswaplab.swapping.swapper import paste_back


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=112)
    args = ap.parse_args()
    torch.set_num_threads(1)
    size, faces, method = args.size, SyntheticFaces(0), build_method("landmark_warp")
    grey = lambda m: np.repeat((np.clip(m, 0, 1) * 255).astype(np.uint8)[..., None], 3, 2)  # noqa: E731
    rows = []
    for k, kind in enumerate(OCCLUDERS):
        t = faces.render(k, size, pose=(12 * (k - 2), 0, 0), occluder=kind,
                         occluder_rng=np.random.default_rng([TEST_FIRST, k]))
        s = faces.sample((k + 3) % 8, TEST_FIRST + k, size)
        crop_t, m, lm_t = align_face(t.image, t.landmarks, size)
        crop_s, _, lm_s = align_face(s.image, s.landmarks, size)
        swapped = method.swap(crop_t, crop_s, target_landmarks=lm_t, source_landmarks=lm_s)
        seen = visibility("segment", to_tensor(t.image)[None])[0, 0].numpy()
        outs = [paste_back(t.image.copy(), crop_t, swapped, m, lm_t, size, SwapOptions.from_dict({"mask": mk}))
                for mk in ("hull", "segment")]
        rows.append(np.concatenate([t.image, grey(t.visible), grey(seen), s.image, *outs], 1))
    write_image(args.out, np.concatenate(rows, 0))


if __name__ == "__main__":
    main()
