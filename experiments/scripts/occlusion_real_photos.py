"""How much of the landmark hull the visible-face segmenter keeps on real photos (no ground truth exists there).

    python experiments/scripts/occlusion_real_photos.py [--media ../shared/media] [--out occlusion_real.png]

For every person photo of ``media/photos`` (groups left out), the largest face is found with dlib, aligned to a
128 px crop, and the share of hull pixels the segmenter calls visible is printed per folder (1.0: it keeps the
whole hull; the synthetic renders it was trained on are cartoons, so a low share flags the domain gap). With
``--out`` a contact sheet of crops with the removed part of the hull tinted red is written.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from faceswaplab.faces.alignment import align_face
from faceswaplab.faces.masks import face_hull_mask_np
from faceswaplab.faces.occlusion import visibility
from faceswaplab.faces.pipeline import largest_face, make_backend
from faceswaplab.images import to_tensor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", default=str(Path(__file__).resolve().parents[3] / "shared" / "media"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    backend = make_backend("dlib")
    sheet, kept_all = [], []
    for folder in sorted(p for p in (Path(args.media) / "photos").iterdir() if p.is_dir() and p.name != "groups"):
        kept = []
        for path in sorted(folder.iterdir()):
            image, face = largest_face(backend, path, 1024, "auto")
            if face is None:
                print(f"{path}: no face")
                continue
            crop, _, lm = align_face(image, face.landmarks, 128)
            hull = face_hull_mask_np(lm, 128) > 0.5
            seen = visibility("segment", to_tensor(crop)[None])[0, 0].numpy() > 0.5
            kept.append(float(seen[hull].mean()))
            tinted = crop.copy()
            tinted[hull & ~seen] = (0.5 * tinted[hull & ~seen] + [127, 0, 0]).astype(np.uint8)
            sheet.append(tinted)
        kept_all += kept
        print(f"{folder.name:<16} {len(kept):>3} faces  hull share kept: mean {np.mean(kept):.3f}, "
              f"min {np.min(kept):.3f}")
    print(f"all {len(kept_all)} faces: mean {np.mean(kept_all):.3f}, median {np.median(kept_all):.3f}")
    if args.out:
        from faceswaplab.io import write_image

        cols = 10
        sheet += [np.zeros_like(sheet[0])] * (-len(sheet) % cols)
        rows = [np.concatenate(sheet[i:i + cols], 1) for i in range(0, len(sheet), cols)]
        write_image(args.out, np.concatenate(rows, 0))


if __name__ == "__main__":
    main()
