"""Measure identity embedders: same- vs different-identity ROC AUC on synthetic faces and on real photos.

:func:`synthetic_auc` and :func:`photo_folder_auc` score any :class:`FaceEmbedder`; on the command line,
``python -m faceswaplab.metrics.embedder_auc [--train] [--backend NAME ...] [--photos DIR]``; ``--train`` first
(re)trains the synthetic embedder into the cache. Backends that cannot run here are listed with the reason.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from faceswaplab.metrics.embedders import EMBEDDERS, FaceEmbedder, build_embedder, pair_auc, train_synthetic_embedder
from faceswaplab.metrics.weights import MetricUnavailable


def synthetic_auc(embedder: FaceEmbedder, identities: int = 8, renders: int = 20, size: int = 128, seed: int = 0,
                  use_landmarks: bool = True, batch: int = 32) -> float:
    """Same- vs different-identity ROC AUC of `embedder` on `identities` x `renders` synthetic faces (random pose,
    expression, light, background; :meth:`SyntheticFaces.sample`) of population `seed`."""
    from faceswaplab.data.synthetic import SyntheticFaces

    faces = SyntheticFaces(seed, identities)
    rs = [faces.sample(i, k, size) for i in range(identities) for k in range(renders)]
    embs = []
    for s in range(0, len(rs), batch):
        chunk = rs[s:s + batch]
        img = torch.as_tensor(np.stack([r.image for r in chunk])).permute(0, 3, 1, 2).float() / 127.5 - 1
        lm = torch.as_tensor(np.stack([r.landmarks for r in chunk])) if use_landmarks else None
        embs.append(embedder.embed(img, lm))
    return pair_auc(torch.cat(embs), [r.identity for r in rs])


def photo_folder_auc(embedder: FaceEmbedder, root, size: int = 128, max_per_person: int | None = None,
                     exclude: tuple[str, ...] = ("groups",)) -> tuple[float, int, int]:
    """Same- vs different-identity ROC AUC of `embedder` on real photos ``root/<person>/*`` (one face each; the
    folders named in `exclude`, e.g. group photos, are left out).

    Every photo is padded (tight crops need context), its largest face found by dlib (HOG) and aligned to a `size`
    crop. Returns ``(auc, photos used, photos skipped)``; skipped photos (no face found) are reported, not fatal.
    """
    from pathlib import Path

    import cv2

    from faceswaplab.faces.alignment import align_face
    from faceswaplab.faces.backends import DlibBackend
    from faceswaplab.io import ImageReadError, read_image

    backend = DlibBackend("hog", upsample=1)
    embs, ids, skipped = [], [], 0
    people = sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name not in exclude)
    for pid, person in enumerate(people):
        files = sorted(f for f in person.iterdir() if f.is_file())[:max_per_person]
        for f in files:
            try:
                img = read_image(f)
            except ImageReadError:
                skipped += 1
                continue
            pad = max(img.shape[:2]) // 2
            big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            faces = backend.faces(big)
            if not faces:
                skipped += 1
                continue
            crop, _, lm = align_face(big, max(faces, key=lambda x: x.area).landmarks, size)
            x = torch.as_tensor(crop).permute(2, 0, 1)[None].float() / 127.5 - 1
            embs.append(embedder.embed(x, torch.as_tensor(lm)[None]))
            ids.append(pid)
    return pair_auc(torch.cat(embs), ids), len(ids), skipped


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m faceswaplab.metrics.embedder_auc",
                                 description="Train the synthetic embedder and/or measure embedder ROC AUC on "
                                             "synthetic faces (same vs different identity pairs).")
    ap.add_argument("--backend", action="append", choices=EMBEDDERS,
                    help="embedder(s) to measure (repeatable; default: all that can run here)")
    ap.add_argument("--train", action="store_true", help="train (or retrain) the synthetic embedder first")
    ap.add_argument("--identities", type=int, default=8)
    ap.add_argument("--renders", type=int, default=20)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0, help="population seed of the evaluation faces (default 0)")
    ap.add_argument("--arcface-model", default=None, help="ArcFace .onnx file for the arcface backend")
    ap.add_argument("--photos", default=None,
                    help="also measure on real photos: a folder of <person>/ folders (groups/ is left out)")
    args = ap.parse_args(argv)
    if args.train:
        print(f"trained: {train_synthetic_embedder()}")
    for name in args.backend or list(EMBEDDERS):
        kwargs = {"model_path": args.arcface_model} if name == "arcface" else {}
        try:
            emb = build_embedder(name, **kwargs)
        except MetricUnavailable as e:
            print(f"{name}: unavailable: {e.reason}")
            continue
        for use_lm in (True, False):
            auc = synthetic_auc(emb, args.identities, args.renders, args.size, args.seed, use_landmarks=use_lm)
            print(f"{name}: synthetic ROC AUC {auc:.4f} ({args.identities} identities x {args.renders} renders, "
                  f"{args.size} px, seed {args.seed}, landmarks {'given' if use_lm else 'canonical'})", flush=True)
        if args.photos:
            auc, used, skipped = photo_folder_auc(emb, args.photos, args.size)
            print(f"{name}: photos ROC AUC {auc:.4f} ({used} photos of {args.photos}, {skipped} skipped: no face "
                  f"found or unreadable)", flush=True)


if __name__ == "__main__":
    main()
