"""Named samples of a set-up data module: the benchmark's fixed (source, target) pairs, a sample's key that does not
depend on the split's order, and unaugmented batches of chosen samples."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import default_collate


class SampleRef(NamedTuple):
    """One sample of the data module: identity number and index within that identity's split."""

    identity: int
    index: int


class SampleAccess:
    """What :class:`~faceswaplab.data.datamodule.FaceDataModule` offers the benchmark and previews (it needs the
    data module's ``datasets``, ``_per_identity``, ``mode``, ``identity_names`` and ``setup``)."""

    def test_pairs(self, n: int, seed: int = 0, split: str = "test") -> list[tuple[SampleRef, SampleRef]]:
        """`n` fixed (source, target) pairs of held-out samples of different identities.

        Pair mode alternates A -> B and B -> A; many mode draws the two identities at random. Each identity's
        samples are visited in a seeded permutation before any repeats.
        """
        if not self.datasets:
            self.setup()
        parts = self._per_identity[split]
        usable = [k for k, d in enumerate(parts) if len(d) > 0]
        if len(usable) < 2:
            raise ValueError(f"test_pairs needs two identities with {split} samples, found {len(usable)}")
        rng = np.random.default_rng([int(seed), 7])
        cursors: dict[int, list[int]] = {}

        def draw(k: int) -> SampleRef:
            if not cursors.get(k):
                cursors[k] = rng.permutation(len(parts[k])).tolist()
            return SampleRef(k, cursors[k].pop())

        pairs = []
        for j in range(n):
            if self.mode == "pair":
                s, t = (0, 1) if j % 2 == 0 else (1, 0)
            else:
                s, t = rng.choice(usable, 2, replace=False).tolist()
            pairs.append((draw(s), draw(t)))
        return pairs

    def sample_key(self, ref: SampleRef, split: str = "test") -> tuple[str, Any]:
        """``(identity name, sample id)`` of `ref`: names a sample independently of the split's order."""
        if not self.datasets:
            self.setup()
        return self.identity_names[ref.identity], self._per_identity[split][ref.identity].ids[ref.index]

    def find_sample(self, identity: str, sample_id: Any, split: str = "test") -> SampleRef:
        """The :class:`SampleRef` of sample `sample_id` of `identity` in `split` (inverse of :meth:`sample_key`)."""
        if not self.datasets:
            self.setup()
        names = self.identity_names
        if identity not in names:
            raise ValueError(f"no identity {identity!r} in this data module (has {names})")
        k = names.index(identity)
        ids = self._per_identity[split][k].ids
        if sample_id not in ids:
            raise ValueError(f"sample {sample_id!r} of {identity!r} is not in the {split} split")
        return SampleRef(k, ids.index(sample_id))

    def load(self, refs: Sequence[SampleRef], split: str = "test") -> dict[str, torch.Tensor]:
        """A batch (unsuffixed keys) of the samples `refs` of `split`, unaugmented."""
        if not self.datasets:
            self.setup()
        parts = self._per_identity[split]
        return default_collate([parts[r.identity][(r.index, -1)] for r in refs])
