"""Writing and reading checkpoints: the one way they are saved, verified and loaded.

* **No code runs on load.** :func:`load` unpickles with ``torch.load(weights_only=True)``: only tensors, plain
  containers and numbers, plus the types in :data:`SAFE_TYPES`. Our checkpoints hold nothing else (weights,
  optimiser and scheduler states, loop and callback states, hyperparameters of plain values); add a type of your
  own with ``SAFE_TYPES.append(cls)``. The method's class is looked up by the name it recorded
  (:data:`CLASS_KEY`) among the :class:`~faceswaplab.methods.FaceSwapMethod` classes defined in the modules of
  ``faceswaplab.methods`` and those allowed with :func:`allow_method`; no other name is ever imported.
* **Nothing corrupt loads silently.** :func:`save` writes a checkpoint atomically and its SHA-256 beside it
  (``last.ckpt.sha256``, in ``sha256sum`` format); :func:`verify` recomputes it on every load. A checkpoint without
  that file (written by an older version, or copied alone) is checked against the CRC32 of every record of its zip
  archive instead. An empty, text, truncated, damaged or changed file raises :class:`CheckpointError`, one line
  naming the file and the reason.

Lightning writes and reads through :class:`faceswaplab.callbacks.AtomicCheckpointIO`, which calls :func:`save` and
:func:`load`, so training, resuming, :func:`faceswaplab.load` and :func:`faceswaplab.methods.load_method` share them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import pickle
import pkgutil
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from faceswaplab.errors import FaceSwapLabError
from faceswaplab.io import atomic_path, write_text

if TYPE_CHECKING:
    from faceswaplab.methods.base import FaceSwapMethod

log = logging.getLogger(__name__)

CLASS_KEY = "faceswaplab_method"  # checkpoint entry naming the method's class ("<module>.<class>")
HASH_SUFFIX = ".sha256"
METHODS_PACKAGE = "faceswaplab.methods"

# Types a checkpoint may hold beyond torch's weights-only set (tensors, dtypes, OrderedDict, plain containers and
# numbers). Training each method and listing the globals its checkpoint needs
# (torch.serialization.get_unsafe_globals_in_checkpoint) finds none: append a type only a method of yours stores.
SAFE_TYPES: list[Any] = []

_ALLOWED_METHODS: dict[str, type] = {}  # "<module>.<class>" -> class, from allow_method


class CheckpointError(FaceSwapLabError, ValueError):
    """A checkpoint that cannot be used: missing, empty, not a checkpoint, damaged, or holding something unsafe."""


# --------------------------------------------------------------------------------------------------- integrity


def hash_file(path: str | os.PathLike) -> Path:
    """The file holding `path`'s SHA-256: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + HASH_SUFFIX)


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _recorded_hashes(path: Path) -> list[str] | None:
    """The hashes recorded for `path` (None: no hash file)."""
    record = hash_file(path)
    if not record.is_file():
        return None
    hashes = [line.split()[0].lower() for line in record.read_text(errors="replace").splitlines() if line.strip()]
    if not hashes or not all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes):
        raise CheckpointError(f"{record}: not a SHA-256 record (expected lines '<64 hex digits>  {path.name}')")
    return hashes


def _write_hashes(path: Path, hashes: list[str]) -> None:
    write_text(hash_file(path), "".join(f"{h}  {path.name}\n" for h in hashes))


def save(write: Callable[[Path], None], path: str | os.PathLike) -> str:
    """Write a checkpoint with ``write(tmp_path)`` to a temporary file, rename it onto `path` and record its
    SHA-256 in ``<path>.sha256``; returns the hash.

    A kill at any moment leaves `path` either the old or the new checkpoint, and the record verifies either: the
    new hash is added to the record before the rename and the old one dropped only after it.
    """
    path = Path(path)
    previous: list[str] = []
    if path.is_file():
        try:
            previous = _recorded_hashes(path) or [sha256(path)]
        except CheckpointError:  # an unreadable record: replaced below
            previous = []
    with atomic_path(path) as tmp:
        write(tmp)
        digest = sha256(tmp)
        _write_hashes(path, [digest, *(h for h in previous if h != digest)])
    _write_hashes(path, [digest])
    return digest


def remove(path: str | os.PathLike) -> None:
    """Delete a checkpoint and its hash record."""
    for p in (Path(path), hash_file(path)):
        p.unlink(missing_ok=True)


def sweep_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that a run killed while writing left in `folder` (``.last.<random>.tmp.ckpt``,
    ``.last.ckpt.<random>.tmp.sha256``); returns them. Call it only when no other process writes there."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(p for pattern in (".*.tmp.ckpt", f".*.tmp{HASH_SUFFIX}") for p in folder.glob(pattern)
                   if p.is_file())
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) of an interrupted checkpoint write in %s", len(stale), folder)
    return stale


def verify(path: str | os.PathLike) -> str:
    """Check that `path` is a whole, unchanged checkpoint; returns how: ``"sha256"`` (its recorded hash) or
    ``"crc32"`` (no hash record: the zip records' checksums). Raises :class:`CheckpointError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    with open(path, "rb") as f:
        head = f.read(64)
    if not head.startswith(b"PK\x03\x04"):  # torch.save writes a zip archive
        text = all(32 <= b < 127 or b in b"\t\r\n" for b in head)
        kind = "a text file" if text else "not a zip archive as torch.save writes"
        raise CheckpointError(f"{path}: not a checkpoint ({kind}; {size} bytes beginning {head[:16]!r})")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated ({size} bytes, the end of its zip archive is missing)")
    hashes = _recorded_hashes(path)
    if hashes is not None:
        digest = sha256(path)
        if digest not in hashes:
            raise CheckpointError(f"{path}: damaged or changed since it was written (its SHA-256 {digest[:16]}... "
                                  f"differs from {hashes[0][:16]}... recorded in {hash_file(path).name})")
        return "sha256"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: damaged zip archive ({e})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: damaged (the checksum of its record {bad!r} does not match)")
    log.warning("%s has no %s record beside it; checked its zip checksums instead", path, HASH_SUFFIX)
    return "crc32"


def newest_verified(paths: list[Path]) -> tuple[Path | None, dict[Path, str]]:
    """The first of `paths` that verifies, and why each one before it did not."""
    failures = {}
    for p in paths:
        try:
            verify(p)
            return p, failures
        except CheckpointError as e:
            failures[p] = str(e)
    return None, failures


# --------------------------------------------------------------------------------------------------- loading


@contextlib.contextmanager
def safe_types() -> Iterator[None]:
    """Allow :data:`SAFE_TYPES` to weights-only loads inside the block (and nowhere else)."""
    with torch.serialization.safe_globals(list(SAFE_TYPES)):
        yield


def load(path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False, verified: bool = False) -> dict:
    """A verified checkpoint's contents, unpickled weights-only (no code runs). `mmap`: tensors are read lazily;
    `verified`: skip :func:`verify` (the caller just did it)."""
    path = Path(path)
    if not verified:
        verify(path)
    try:
        with safe_types():
            ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = found.group(1) if found else "an object"
        raise CheckpointError(f"{path}: refers to {what}, which a checkpoint may not hold (only tensors, plain "
                              "values and faceswaplab.checkpoints.SAFE_TYPES are unpickled; nothing was run)") from None
    except (RuntimeError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({_first_line(e)})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return ckpt


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def allow_method(cls: type) -> type:
    """Let checkpoints of `cls`, a :class:`FaceSwapMethod` defined outside ``faceswaplab.methods``, be loaded by
    :func:`faceswaplab.load`, ``swap`` and the benchmark. Usable as a class decorator."""
    from faceswaplab.methods.base import FaceSwapMethod

    if not (isinstance(cls, type) and issubclass(cls, FaceSwapMethod)):
        raise TypeError(f"allow_method takes a FaceSwapMethod subclass, got {cls!r}")
    _ALLOWED_METHODS[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def method_class(checkpoint: dict, path: str | os.PathLike = "checkpoint") -> type[FaceSwapMethod]:
    """The method class a checkpoint records, resolved without importing anything but ``faceswaplab.methods``'
    own modules (or a class given to :func:`allow_method`)."""
    from faceswaplab.methods.base import FaceSwapMethod

    name = checkpoint.get(CLASS_KEY)
    if not isinstance(name, str):
        raise CheckpointError(f"{path}: not a faceswaplab method checkpoint (no {CLASS_KEY!r} entry)")
    if name in _ALLOWED_METHODS:
        return _ALLOWED_METHODS[name]
    module, _, cls_name = name.rpartition(".")
    package = importlib.import_module(METHODS_PACKAGE)
    ours = {f"{METHODS_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(package.__path__)}
    cls = getattr(importlib.import_module(module), cls_name, None) if module in ours else None
    if not (isinstance(cls, type) and issubclass(cls, FaceSwapMethod) and cls is not FaceSwapMethod
            and cls.__module__ == module):
        raise CheckpointError(
            f"{path}: records the method class {name!r}, which is not a method of {METHODS_PACKAGE} "
            "(a method of your own loads once allowed with faceswaplab.checkpoints.allow_method(<class>))")
    return cls
