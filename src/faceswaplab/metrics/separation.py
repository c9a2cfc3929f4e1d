"""How well an embedder separates identities: same- vs different-identity ROC AUC on synthetic faces and on photos.

The command line is :mod:`faceswaplab.metrics.embedder_auc`.
"""

from __future__ import annotations

import numpy as np
import torch

from faceswaplab.metrics.embedders import FaceEmbedder, pair_auc


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
