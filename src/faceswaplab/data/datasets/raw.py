"""Sources of raw photos and videos, prepared once into a cache folder keyed by input and options, then read
like a prepared folder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

from faceswaplab.data.datasets.base import plain
from faceswaplab.data.datasets.prepared import INDEX_FILE, PreparedIdentities, PreparedIdentity

log = logging.getLogger(__name__)


def _fingerprint(path: Path) -> str:
    """A cheap fingerprint of an input file or folder: names, sizes and modification times."""
    h = hashlib.sha1()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(path) if p != path else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# Prepare options that do not change what is written, left out of the cache key.
_RUN_OPTIONS = frozenset({"workers", "progress", "overwrite", "require_faces"})


def prepared_cache_dir(cache_dir: str | os.PathLike, path: str | os.PathLike, options: dict) -> Path:
    """Where raw input `path` prepared with `options` is cached: ``<cache_dir>/<name>-<hash of path+options>``."""
    path = Path(path).expanduser().resolve()
    kept = {k: v for k, v in options.items() if k not in _RUN_OPTIONS and v is not None}
    key = json.dumps({"input": str(path), "options": kept}, sort_keys=True, default=str)
    return Path(cache_dir).expanduser() / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def prepare_cached(path: str | os.PathLike, cache_dir: str | os.PathLike, options: dict) -> Path:
    """Prepare raw input `path` into its cache folder unless already done for the same input; return the folder.

    Preparation is resumable: an interrupted run continues where it stopped.
    """
    from faceswaplab.io import write_json

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    out = prepared_cache_dir(cache_dir, path, options)
    stamp = out / "prepared.json"
    fp = _fingerprint(path)
    if stamp.is_file() and (out / INDEX_FILE).is_file():
        try:
            if json.loads(stamp.read_text()).get("fingerprint") == fp:
                return out
        except json.JSONDecodeError:
            pass  # a damaged stamp only costs a (resumed) rerun
    from faceswaplab.data.preparation import prepare

    log.info("preparing faces of %s into %s", path, out)
    summary = prepare(str(path), str(out), **options)
    log.info("prepared %s: %s", path, summary)
    write_json(stamp, {"input": str(path.resolve()), "options": options, "fingerprint": fp, "summary": str(summary)})
    return out


class RawIdentity(PreparedIdentity):
    """A folder of photos, a video or a folder of videos of one identity, prepared into a cache on first use.

    path: the input. identity: the name shown in reports and split files (default: the input's name).
    options: :func:`faceswaplab.data.preparation.prepare` options (size, margin, fps, backend, select, ...), merged over
    the data module's `prepare` options. The cache folder is ``<cache_dir>/<input stem>-<hash>``, keyed by the
    absolute input path and the options.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        identity: str | None = None,
        options: dict | None = None,
        split_block_s: float = 10.0,
        split_gap_s: float = 2.0,
    ):
        super().__init__(path, None, split_block_s, split_gap_s)
        p = Path(path).expanduser().resolve()
        self._name = identity or (p.stem if p.is_file() else p.name)
        self.options = dict(plain(options) or {})
        self._folder: Path | None = None
        self.cache_dir: Path | None = None
        self.defaults: dict = {}

    def configure(self, cache_dir: str | os.PathLike, defaults: dict | None = None) -> None:
        """Set the cache folder and default prepare options (the data module does this)."""
        self.cache_dir = Path(cache_dir).expanduser()
        self.defaults = dict(plain(defaults) or {})
        self._folder = None

    @property
    def prepare_options(self) -> dict:
        # One identity: sub-folders are just more photos of it, never identities of their own.
        return {"layout": "images", **self.defaults, **self.options}

    @property
    def folder(self) -> Path:
        if self._folder is None:
            if self.cache_dir is None:
                raise RuntimeError(f"{self!r}: no cache_dir configured")
            self._folder = prepared_cache_dir(self.cache_dir, self.path, self.prepare_options)
        return self._folder

    def prepare(self, cache_dir=None):
        if cache_dir is not None and self.cache_dir is None:
            self.configure(cache_dir, self.defaults)
        self._folder = prepare_cached(self.path, self.cache_dir, self.prepare_options)
        self._records = None


class RawIdentities(PreparedIdentities):
    """A folder of identity folders (``root/<identity>/<photos or videos>``, CelebA-style), prepared into a cache.

    options: prepare options merged over the data module's; identities: restrict to these names.
    """

    def __init__(self, path: str | os.PathLike, identities: Sequence[str] | None = None, min_samples: int = 1,
                 options: dict | None = None, split_block_s: float = 10.0, split_gap_s: float = 2.0):
        super().__init__(path, identities, min_samples, split_block_s, split_gap_s)
        self.options = dict(plain(options) or {})
        self.cache_dir: Path | None = None
        self.defaults: dict = {}

    def configure(self, cache_dir, defaults=None):
        self.cache_dir = Path(cache_dir).expanduser()
        self.defaults = dict(plain(defaults) or {})

    @property
    def prepare_options(self) -> dict:
        # One identity folder without a usable face must not stop a many-identity set: it is reported by
        # prepare and then dropped here by `min_samples`.
        return {"layout": "identities", "require_faces": False, **self.defaults, **self.options}

    @property
    def folder(self) -> Path:
        if self.cache_dir is None:
            raise RuntimeError(f"{type(self).__name__}({self.path}): no cache_dir configured")
        return prepared_cache_dir(self.cache_dir, self.path, self.prepare_options)

    def prepare(self):
        prepare_cached(self.path, self.cache_dir, self.prepare_options)
