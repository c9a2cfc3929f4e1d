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

    def _raw(self, i: int) -> dict:
        sample_id = self.ids[i]
        if self.cache is None:
            return self._load(sample_id)
        key = (self.source.name, sample_id, self.image_size, self.augment is not None)
        return self.cache.get(key, lambda: self._load(sample_id))

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: Sequence) -> list[dict[str, torch.Tensor]]:
        """Several items at once (the DataLoader fetches a batch so): the augmented ones go through one call of
        the augmentation, each with its own seed's generator, which gives what one call per item would."""
        items = [(int(it[0]), it[1]) if isinstance(it, tuple) else (int(it), -1) for it in items]
        raws = [self._raw(i) for i, _ in items]
        augmented = [k for k, (_, seed) in enumerate(items)
                     if self.augment is not None and seed is not None and seed >= 0]
        out = [None if k in augmented else self._sample(i, raw) for k, ((i, _), raw) in enumerate(zip(items, raws))]
        # One call per kind of sample (with or without a ground-truth visible mask: a different channel count).
        for has_visible in (False, True):
            group = [k for k in augmented if ("visible" in raws[k]) == has_visible]
            if group:
                for k, sample in zip(group, self._augmented([items[k] for k in group], [raws[k] for k in group])):
                    out[k] = sample
        return out

    def _augmented(self, items: list[tuple[int, int]], raws: list[dict]) -> list[dict[str, torch.Tensor]]:
        """Augment the loaded samples together: image, mask, eyes, mouth (and visible) through one geometry;
        channels after RGB skip the colour."""
        image = torch.stack([to_tensor(r["image"]) for r in raws])  # (B, 3, S, S)
        lm = torch.from_numpy(np.stack([np.asarray(r["landmarks"], np.float32) for r in raws]))  # (B, 68, 2)
        maps = torch.from_numpy(np.stack([r["_maps"] for r in raws]).astype(np.float32) * (1 / 255))  # (B, 3, S, S)
        stack = [image, maps]
        if "visible" in raws[0]:
            stack.append(torch.from_numpy(np.stack([np.asarray(r["visible"], np.float32) for r in raws]))[:, None])
        generators = [torch.Generator().manual_seed(int(seed)) for _, seed in items]
        stack, lm, info = self.augment(torch.cat(stack, 1), lm, generators, return_info=True)
        image, hull, parts = stack[:, :3], stack[:, 3:4], stack[:, 4:6]
        visible = stack[:, 6:7] if stack.shape[1] > 6 else None
        mask = occlusion_aware_mask(self.mask, image, hull)  # (B, 1, S, S)
        pose = None
        if "pose" in raws[0]:
            pose = torch.tensor(np.stack([r["pose"] for r in raws]), dtype=torch.float32)
            pose = self.augment.adjust_pose(pose, info)
        return [self._fields(i, raw, image[k], lm[k], mask[k], parts[k], None if pose is None else pose[k],
                             None if visible is None else visible[k])
                for k, ((i, _), raw) in enumerate(zip(items, raws))]

    def _sample(self, i: int, raw: dict) -> dict[str, torch.Tensor]:
        """An unaugmented sample: its maps drawn from its landmarks."""
        image = to_tensor(raw["image"])  # (3, S, S)
        lm = torch.tensor(np.asarray(raw["landmarks"]), dtype=torch.float32)  # (68, 2); copies (see cache)
        hull, eyes, mouth = (torch.from_numpy(m) for m in self._maps(lm.numpy()))
        mask = occlusion_aware_mask(self.mask, image[None], hull[None, None])[0]  # (1, S, S)
        pose = torch.tensor(raw["pose"], dtype=torch.float32) if "pose" in raw else None
        visible = torch.tensor(np.asarray(raw["visible"]), dtype=torch.float32)[None] if "visible" in raw else None
        return self._fields(i, raw, image, lm, mask, torch.stack([eyes, mouth]), pose, visible)

    def _fields(self, i: int, raw: dict, image, landmarks, mask, parts, pose, visible) -> dict[str, torch.Tensor]:
        out = {
            S.IMAGE: image.contiguous(),
            S.LANDMARKS: landmarks.float().contiguous(),
            S.MASK: mask.contiguous(),
            S.PARTS: parts.contiguous(),
            S.IDENTITY: torch.tensor(self.identity, dtype=torch.int64),
            S.INDEX: torch.tensor(i, dtype=torch.int64),
        }
        if pose is not None:
            out[S.POSE] = pose
        if "expression" in raw:
            out[S.EXPRESSION] = torch.tensor(raw["expression"], dtype=torch.float32)
        if visible is not None:
            out[S.VISIBLE] = visible.clamp(0, 1).contiguous()
        return out


class PairDataset(Dataset):
    """Unpaired A/B samples: item ``(i_A, i_B, aug_seed)`` -> the union of both samples' fields, suffixed."""

    def __init__(self, a: FaceDataset, b: FaceDataset):
        self.a, self.b = a, b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: Sequence) -> list[dict[str, torch.Tensor]]:
        items = [it if isinstance(it, tuple) else (it % len(self.a), it % len(self.b), -1) for it in items]
        # Independent augmentation streams for the two sides.
        a = self.a.__getitems__([(ia, -1 if seed < 0 else 2 * seed) for ia, _, seed in items])
        b = self.b.__getitems__([(ib, -1 if seed < 0 else 2 * seed + 1) for _, ib, seed in items])
        return [{**{S.key(k, "A"): v for k, v in x.items()}, **{S.key(k, "B"): v for k, v in y.items()}}
                for x, y in zip(a, b)]


class ManyDataset(Dataset):
    """Many identities: item ``(k, i, aug_seed)`` -> sample i of identity k (unsuffixed keys)."""

    def __init__(self, datasets: Sequence[FaceDataset]):
        self.datasets = list(datasets)
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: Sequence) -> list[dict[str, torch.Tensor]]:
        located = []
        for item in items:
            if isinstance(item, tuple):
                located.append(item)
            else:
                k = int(np.searchsorted(self.offsets, item, side="right") - 1)
                located.append((k, item - int(self.offsets[k]), -1))
        out: list = [None] * len(items)
        for k in sorted({loc[0] for loc in located}):  # each identity's items in one call
            where = [n for n, loc in enumerate(located) if loc[0] == k]
            for n, sample in zip(where, self.datasets[k].__getitems__([located[n][1:] for n in where])):
                out[n] = sample
        return out
