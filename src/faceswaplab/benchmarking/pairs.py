"""The benchmark's data: the data module at the trained runs' settings, and the held-out (source, target) pairs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from faceswaplab.runs import RunDir

log = logging.getLogger("faceswaplab.benchmark")

PAIRS_FORMAT = "faceswaplab-pairs-1"


def run_settings(rows: dict[str, dict]) -> tuple[int | None, Path | None]:
    """The image size and splits file of the trained runs (all must agree)."""
    sizes, runs = {}, {}
    for name, entry in rows.items():
        if entry.get("run") is None:
            continue
        run = RunDir(entry["run"])
        if not run.config_file.is_file():
            raise ValueError(f"methods.{name}.run: {run.path} is not a run directory (no config.yaml)")
        sizes[name] = run.image_size
        if not run.splits_file.is_file():
            raise ValueError(f"methods.{name}.run: {run.splits_file} is missing (the held-out split is unknown)")
        runs[name] = run
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the runs were trained at different image sizes {sizes}: benchmark them separately")
    # Runs of one-shot methods list their training identities too: compare the identities all runs have.
    per_run = {n: run.splits["identities"] for n, run in runs.items()}
    shared = set.intersection(*(set(ids) for ids in per_run.values())) if per_run else set()
    if len(per_run) > 1 and not shared:
        raise ValueError(f"the runs {sorted(runs)} share no identity: benchmark them separately")
    tests = {n: json.dumps({k: ids[k].get("test") for k in shared}, sort_keys=True) for n, ids in per_run.items()}
    if len(set(tests.values())) > 1:
        raise ValueError(f"the runs have different test splits ({sorted(runs)}): their held-out images differ, "
                         "benchmark them separately")
    size = next(iter(sizes.values())) if sizes else None
    return size, (next(iter(runs.values())).splits_file if runs else None)


def data_module(cfg: DictConfig, rows: dict[str, dict]):
    size, splits_file = run_settings(rows)
    data_cfg = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    if data_cfg.get("mode", "pair") != "pair":
        raise ValueError(f"the benchmark needs data.mode=pair (identities A and B), got {data_cfg.mode!r}")
    if size is not None and size != int(data_cfg.image_size):
        log.info("data.image_size %s -> %d (the trained runs' size)", data_cfg.image_size, size)
        data_cfg.image_size = size
    if splits_file is not None:
        data_cfg.splits_file = str(splits_file)
    data_cfg.num_workers, data_cfg.persistent_workers = 0, False
    dm = hydra.utils.instantiate(data_cfg)
    dm.setup("test")
    return dm, data_cfg


def subset(batch: dict, idx) -> dict:
    return {k: v[idx] for k, v in batch.items()}


def read_pairs(path: str | Path, dm) -> list:
    """The (source, target) :class:`~faceswaplab.data.samples.SampleRef` pairs of a ``pairs.json``."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"pairs_file {path}: cannot read it ({e})") from None
    if data.get("format") != PAIRS_FORMAT:
        raise ValueError(f"pairs_file {path}: not a faceswaplab pair list (format {data.get('format')!r})")
    pairs = []
    for i, p in enumerate(data["pairs"]):
        try:
            pairs.append(tuple(dm.find_sample(*p[k]) for k in ("source", "target")))
        except ValueError as e:
            raise ValueError(f"pairs_file {path}, pair {i}: {e}") from None
    return pairs


def pairs_record(pairs, dm) -> dict:
    """A ``pairs.json`` object naming each pair's samples by identity name and sample id."""
    return {"format": PAIRS_FORMAT, "split": "test",
            "pairs": [{"source": list(dm.sample_key(s)), "target": list(dm.sample_key(t))} for s, t in pairs]}


def other_source_refs(dm, pairs, seed: int) -> list:
    """For each pair, another test sample of the source's identity (seeded; never the source itself): the
    ``source_other`` reference, a real photo of the source in another pose and expression."""
    from faceswaplab.data.samples import SampleRef

    rng = np.random.default_rng([int(seed), 13])
    test = dm.dataset("test")
    refs = []
    for s, _ in pairs:
        n = len((test.a, test.b)[s.identity])
        if n < 2:
            raise ValueError(f"the source_other reference needs two test images of {dm.identity_names[s.identity]}")
        k = int(rng.integers(n - 1))
        refs.append(SampleRef(s.identity, k + (k >= s.index)))
    return refs


def source_shot_refs(dm, pairs, shots: int, seed: int) -> list:
    """For each pair, `shots` - 1 more test samples of the source's identity (seeded, distinct, never the source
    itself), pair after pair: with the source, the K photos a K-shot row (``swap: {shots: K}``) embeds."""
    from faceswaplab.data.samples import SampleRef

    rng = np.random.default_rng([int(seed), 17])
    test = dm.dataset("test")
    refs = []
    for s, _ in pairs:
        n = len((test.a, test.b)[s.identity])
        if n < shots:
            raise ValueError(f"a {shots}-shot row needs {shots} test images of {dm.identity_names[s.identity]}, "
                             f"the test split has {n}")
        others = [i for i in rng.permutation(n).tolist() if i != s.index][: shots - 1]
        refs += [SampleRef(s.identity, i) for i in others]
    return refs


def gallery_images(dm, cfg: DictConfig, seed: int) -> tuple[dict, list[str]]:
    """Images of every gallery identity: ``per_identity`` test images of each identity of the data module, then
    each distractor identity of ``cfg.distractors`` (identity sets or single sources; names already in the data are
    skipped). A distractor identity may have a single image (a face of a group photo).

    Returns ``({"image", "landmarks", "identity"}, names)``: identities number the data module's first (as in its
    batches), then the distractors'.
    """
    from torch.utils.data import default_collate

    from faceswaplab.data.samples import SampleRef
    from faceswaplab.data.datasets import FaceDataset, IdentitySet

    per = int(cfg.per_identity)
    rng = np.random.default_rng([int(seed), 11])
    names = list(dm.identity_names)
    test = dm.dataset("test")
    parts = [dm.load([SampleRef(k, int(i)) for i in rng.permutation(len(part))[:per]])
             for k, part in enumerate((test.a, test.b))]
    for spec in cfg.get("distractors") or []:
        distractor = hydra.utils.instantiate(spec)  # an identity set, or one identity's source
        if hasattr(distractor, "configure"):
            distractor.configure(dm.cache_dir, dm.prepare_options)
        if isinstance(distractor, IdentitySet):
            distractor.prepare()
        for source in distractor.sources() if isinstance(distractor, IdentitySet) else [distractor]:
            if source.name in names:  # the pair's own identities are in the gallery already
                continue
            source.prepare(dm.cache_dir)
            ids = source.sample_ids()  # never trained on: any of them
            ids = [ids[i] for i in sorted(rng.permutation(len(ids))[:per])]
            ds = FaceDataset(source, ids, identity=len(names), image_size=dm.image_size)
            parts.append(default_collate([ds[i] for i in range(len(ds))]))
            names.append(source.name)
    batch = {k: torch.cat([p[k] for p in parts]) for k in ("image", "landmarks", "identity")}
    return batch, names
