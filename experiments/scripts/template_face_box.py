"""Where dlib's HOG detector boxes the face of an aligned crop, relative to the template's landmark box, and how
well the 68-point predictor does inside that fixed box compared with a detection step.

    python experiments/scripts/template_face_box.py [--renders 200] [--size 128]

Prints the median box as fractions of the template landmark box (the constants of
``faceswaplab.metrics.attributes.template_face_box``) and the NME to the renderer's ground truth of landmarks
predicted in that box vs. after HOG detection, with the detector's misses.
"""

import argparse

import numpy as np
import torch

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.faces.backends import DlibBackend
from faceswaplab.faces.template import DEFAULT_MARGIN, canonical_landmarks
from faceswaplab.images import to_tensor
from faceswaplab.metrics.attributes import detect_landmarks, landmark_nme, predict_landmarks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--renders", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--crop", type=int, default=64, help="crop size of the NME check (upscaled to --size)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen, backend = SyntheticFaces(seed=0), DlibBackend("hog", 1)
    lm = canonical_landmarks(args.size, DEFAULT_MARGIN)
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    w, h = x1 - x0, y1 - y0
    rel = []
    for i in range(args.renders):
        boxes, _ = backend.detect(gen.sample(i % 8, 1000 + i, size=args.size).image)
        if len(boxes):
            b = boxes[0]
            rel.append([(x0 - b[0]) / w, (y0 - b[1]) / h, (b[2] - x1) / w, (b[3] - y1) / h])
    rel = np.asarray(rel)
    print(f"{len(rel)} of {args.renders} renders detected; box = landmark box grown by "
          f"left {np.median(rel[:, 0]):.3f} w, top {np.median(rel[:, 1]):.3f} h, "
          f"right {np.median(rel[:, 2]):.3f} w, bottom {np.median(rel[:, 3]):.3f} h")

    faces = [gen.sample(i % 8, 5000 + i, size=args.crop) for i in range(args.renders)]
    images = torch.stack([to_tensor(f.image) for f in faces])
    gt = np.stack([f.landmarks for f in faces])
    predicted = predict_landmarks(images, args.size)
    big = torch.nn.functional.interpolate(images, size=(args.size,) * 2, mode="bicubic", align_corners=False)
    detected = (detect_landmarks(big.clamp(-1, 1)) + 0.5) * (args.crop / args.size) - 0.5
    for name, lms in (("predicted in the template box", predicted), ("detected (HOG)", detected)):
        nme = landmark_nme(lms, gt).numpy()
        print(f"{name}: NME {np.nanmean(nme):.4f} over {np.isfinite(nme).sum()} crops, "
              f"{np.isnan(nme).sum()} missed")
    noise = torch.rand(8, 3, args.crop, args.crop) * 2 - 1
    print(f"noise crops: NME {landmark_nme(predict_landmarks(noise, args.size), gt[:8]).mean():.4f}")


if __name__ == "__main__":
    main()
