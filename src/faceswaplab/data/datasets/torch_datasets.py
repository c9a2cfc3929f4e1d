"""The torch datasets: one source's samples as schema tensors, unpaired A/B pairs, and many identities."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from faceswaplab.data import schema as S
from faceswaplab.data.augment import Augment
from faceswaplab.data.datasets.base import FaceSource
from faceswaplab.faces.masks import DEFAULT_FOREHEAD, face_hull_mask_np, region_masks_np
from faceswaplab.faces.occlusion import check_mask_kind, occlusion_aware_mask
from faceswaplab.images import to_tensor


class SampleCache:
    """Loaded samples (a source's ``load`` output, before augmentation) kept in this process's memory up to
    `max_mb` megabytes, then no more: a synthetic render or a decoded crop is made once per process, not once per
    epoch. The arrays are made read-only so that no later step can change what the next epoch gets. Pickling
    (to loader workers) drops the contents: each process fills its own."""

    def __init__(self, max_mb: float = 0.0):
        self.max_bytes = int(max_mb * 2**20)
        self.bytes = 0
        self.items: dict = {}

    def __getstate__(self):
        return {"max_bytes": self.max_bytes, "bytes": 0, "items": {}}

    def get(self, key, load):
        """``load()``, or what it returned for `key` before."""
        hit = self.items.get(key)
        if hit is not None:
            return hit
        raw = load()
        size = sum(v.nbytes for v in raw.values() if isinstance(v, np.ndarray))
        if self.bytes + size <= self.max_bytes:
            for v in raw.values():
                if isinstance(v, np.ndarray):
                    v.setflags(write=False)
            self.items[key] = raw
            self.bytes += size
        return raw


class FaceDataset(Dataset):
    """The samples `ids` of one source as schema fields (unsuffixed keys), resized to `image_size`.

    Items are addressed by ``i`` or ``(i, aug_seed)``; with an `augment` and a seed >= 0 the sample is augmented
    with a generator seeded by `aug_seed`, so results do not depend on the worker that loads them. Masks and part
    maps are the hull and regions of :mod:`faceswaplab.faces.masks` drawn from the landmarks; an augmented sample's
    are drawn once from the loaded landmarks (kept, as 8 bits, with the cached sample) and then follow the image
    through the augmentation's geometry, as a source's ground-truth ``visible`` mask does. With `mask` ``segment``
    or ``parse`` the hull loses what covers the face (:mod:`faceswaplab.faces.occlusion`). `cache` keeps loaded
    samples in memory (:class:`SampleCache`, shared by the datasets of one data module).
    """

    def __init__(
        self,
        source: FaceSource,
        ids: Sequence,
        identity: int,
        image_size: int = 64,
        augment: Augment | None = None,
        forehead: float = DEFAULT_FOREHEAD,
        mask: str = "hull",
        cache: SampleCache | None = None,
    ):
        if not 16 <= image_size <= 1024:
            raise ValueError(f"image_size must be within 16..1024, got {image_size}")
        self.mask = check_mask_kind(mask)
        self.source = source
        self.ids = list(ids)
        self.identity = int(identity)
        self.image_size = int(image_size)
        self.augment = augment
        self.forehead = float(forehead)
        self.cache = cache

    def __len__(self) -> int:
        return len(self.ids)

    def _maps(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hull mask, eyes and mouth (H, W) float32 of one face's landmarks (the numpy twins of the mask functions:
        same definition, less per-call overhead for one small face)."""
        hull = face_hull_mask_np(landmarks, self.image_size, forehead=self.forehead)
        return (hull, *region_masks_np(landmarks, self.image_size))

    def _load(self, sample_id) -> dict:
        raw = self.source.load(sample_id, self.image_size)
        if self.augment is not None:  # drawn once here, moved with each augmentation's geometry later
            maps = np.stack(self._maps(np.asarray(raw["landmarks"], np.float32)))
            raw = {**raw, "_maps": np.round(maps * 255).astype(np.uint8)}
        return raw

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        i, aug_seed = item if isinstance(item, tuple) else (item, -1)
        i = int(i)
        size = self.image_size
        sample_id = self.ids[i]
        if self.cache is None:
            raw = self._load(sample_id)
        else:
            key = (self.source.name, sample_id, size, self.augment is not None)
            raw = self.cache.get(key, lambda: self._load(sample_id))
        image = to_tensor(raw["image"])[None]  # (1, 3, S, S)
        lm = torch.tensor(np.asarray(raw["landmarks"]), dtype=torch.float32)[None]  # (1, 68, 2); copies (see cache)
        pose = torch.tensor(raw["pose"], dtype=torch.float32) if "pose" in raw else None
        visible = torch.tensor(np.asarray(raw["visible"]), dtype=torch.float32)[None, None] if "visible" in raw else None
        if self.augment is not None and aug_seed is not None and aug_seed >= 0:
            # Image, mask, eyes, mouth (and visible) through one geometry: channels after RGB skip the colour.
            maps = torch.from_numpy(raw["_maps"].astype(np.float32) * (1 / 255))[None]  # (1, 3, S, S)
            stack = torch.cat([image, maps] + ([visible] if visible is not None else []), 1)
            stack, lm, info = self.augment(stack, lm, torch.Generator().manual_seed(int(aug_seed)), return_info=True)
            image, hull, parts = stack[:, :3], stack[0, 3:4], stack[0, 4:6]
            visible = stack[:, 6:7] if visible is not None else None
            if pose is not None:
                pose = self.augment.adjust_pose(pose[None], info)[0]
        else:
            hull, eyes, mouth = (torch.from_numpy(m) for m in self._maps(lm[0].numpy()))
            hull, parts = hull[None], torch.stack([eyes, mouth])
        mask = occlusion_aware_mask(self.mask, image, hull[None])[0]  # (1, S, S)
        out = {
            S.IMAGE: image[0].contiguous(),
            S.LANDMARKS: lm[0].float().contiguous(),
            S.MASK: mask,
            S.PARTS: parts.contiguous(),
            S.IDENTITY: torch.tensor(self.identity, dtype=torch.int64),
            S.INDEX: torch.tensor(i, dtype=torch.int64),
        }
        if pose is not None:
            out[S.POSE] = pose
        if "expression" in raw:
            out[S.EXPRESSION] = torch.tensor(raw["expression"], dtype=torch.float32)
        if visible is not None:
            out[S.VISIBLE] = visible[0].clamp(0, 1)
        return out


class PairDataset(Dataset):
    """Unpaired A/B samples: item ``(i_A, i_B, aug_seed)`` -> the union of both samples' fields, suffixed."""

    def __init__(self, a: FaceDataset, b: FaceDataset):
        self.a, self.b = a, b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        ia, ib, seed = item if isinstance(item, tuple) else (item % len(self.a), item % len(self.b), -1)
        # Independent augmentation streams for the two sides.
        sa, sb = (-1, -1) if seed < 0 else (2 * seed, 2 * seed + 1)
        out = {S.key(k, "A"): v for k, v in self.a[(ia, sa)].items()}
        out.update({S.key(k, "B"): v for k, v in self.b[(ib, sb)].items()})
        return out


class ManyDataset(Dataset):
    """Many identities: item ``(k, i, aug_seed)`` -> sample i of identity k (unsuffixed keys)."""

    def __init__(self, datasets: Sequence[FaceDataset]):
        self.datasets = list(datasets)
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        if isinstance(item, tuple):
            k, i, seed = item
        else:
            k = int(np.searchsorted(self.offsets, item, side="right") - 1)
            i, seed = item - int(self.offsets[k]), -1
        return self.datasets[k][(i, seed)]
