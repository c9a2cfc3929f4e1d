"""Measure identity embedders: same- vs different-identity ROC AUC on synthetic faces and on real photos.

``python -m faceswaplab.metrics.embedder_auc [--train] [--backend NAME ...] [--photos DIR]``; ``--train`` first
(re)trains the synthetic embedder into the cache. Backends that cannot run here are listed with the reason.
"""

from __future__ import annotations

import argparse

from faceswaplab.metrics.embedders import EMBEDDERS, build_embedder, train_synthetic_embedder
from faceswaplab.metrics.separation import photo_folder_auc, synthetic_auc
from faceswaplab.metrics.weights import MetricUnavailable


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
