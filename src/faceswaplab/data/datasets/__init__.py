"""Face sources (where one identity's aligned crops come from) and the torch datasets built on them.

A *source* (:class:`FaceSource`) is one identity: it names its samples (``sample_ids()``), splits them into
train/val/test without leakage (``split()``) and loads one sample as numpy (``load()``). Sources are light and
picklable: nothing is read or rendered before first use, so they are cheap to build from Hydra configs and to
send to DataLoader workers.

* :class:`SyntheticIdentity`: one identity of the procedural renderer, rendered on the fly, deterministic per index.
* :class:`PreparedIdentity`: the crops of a folder written by :func:`faceswaplab.data.preparation.prepare`.
* :class:`ShardedIdentity`: the same, from litdata shards (``prepare ... format=shards``), local or object storage.
* :class:`RawIdentity`: a folder of photos or a video (or a folder of videos), prepared into a cache folder on
  first use (resumable), then read like a prepared folder.

*Identity sets* give many sources at once for the many-identity mode: :class:`SyntheticIdentities`,
:class:`PreparedIdentities`, :class:`RawIdentities` (a folder of identity folders, CelebA-style). :class:`Pool`
makes one source of an identity set (a pair method pretrained on a population).

Splits of real faces group samples by source file, and video frames by blocks of ``split_block_s`` seconds, so
near duplicate frames never straddle train and held-out splits; held-out frames closer than ``split_gap_s`` seconds
to a training block are dropped as well. Groups are assigned to splits by a seeded shuffle.
"""

from faceswaplab.data.datasets.base import FaceSource, HeldOut, IdentitySet, plain
from faceswaplab.data.datasets.prepared import (INDEX_FILE, FacesAsIdentities, PreparedIdentities, PreparedIdentity,
                                                read_index)
from faceswaplab.data.datasets.pool import Pool
from faceswaplab.data.datasets.shards import ShardedIdentities, ShardedIdentity, write_shards
from faceswaplab.data.datasets.raw import RawIdentities, RawIdentity, prepare_cached, prepared_cache_dir
from faceswaplab.data.datasets.splits import SPLITS, describe, split_counts
from faceswaplab.data.datasets.synthetic import SyntheticIdentities, SyntheticIdentity
from faceswaplab.data.datasets.torch_datasets import FaceDataset, ManyDataset, PairDataset, SampleCache

__all__ = [
    "INDEX_FILE", "SPLITS", "FaceDataset", "FaceSource", "FacesAsIdentities", "HeldOut", "IdentitySet", "ManyDataset",
    "PairDataset", "Pool", "PreparedIdentities", "PreparedIdentity", "RawIdentities", "RawIdentity", "SampleCache",
    "ShardedIdentities", "ShardedIdentity",
    "SyntheticIdentities", "SyntheticIdentity", "describe", "plain", "prepare_cached", "prepared_cache_dir",
    "read_index", "split_counts", "write_shards",
]
