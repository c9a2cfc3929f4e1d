"""File input and output: robust image reading and atomic writes (a crash never leaves a half-written file)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image, ImageOps


_UMASK = os.umask(0)
os.umask(_UMASK)
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # write errors that mean "no room for this file"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it is renamed onto `path` only if the block succeeds.

    >>> import tempfile
    >>> from pathlib import Path
    >>> tmpdir = tempfile.TemporaryDirectory()
    >>> folder = Path(tmpdir.name)
    >>> with atomic_path(folder / "table.csv") as tmp:
    ...     _ = tmp.write_text("a,b")  # written under a temporary name first
    >>> (folder / "table.csv").read_text()
    'a,b'
    >>> try:
    ...     with atomic_path(folder / "broken.csv") as tmp:
    ...         _ = tmp.write_text("a,b")
    ...         raise RuntimeError("interrupted")
    ... except RuntimeError:
    ...     pass
    >>> sorted(p.name for p in folder.iterdir())  # neither broken.csv nor a temporary file is left
    ['table.csv']
    >>> tmpdir.cleanup()
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp_path, path)
    except OSError as e:
        if e.filename is None and e.errno in _FULL:  # a write to a full disk names no file: name it
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write `obj` as indented JSON (numpy arrays and numbers, and paths, are converted).

    >>> import json, tempfile
    >>> import numpy as np
    >>> tmpdir = tempfile.TemporaryDirectory()
    >>> path = f"{tmpdir.name}/result.json"
    >>> write_json(path, {"scores": np.array([0.5, 0.25]), "n": np.int64(2)})
    >>> with open(path) as f:
    ...     json.load(f)
    {'scores': [0.5, 0.25], 'n': 2}
    >>> tmpdir.cleanup()
    """
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_image(path: str | os.PathLike, image: np.ndarray, **save_options: Any) -> None:
    """Atomically write an (H, W, 3) uint8 RGB or (H, W) uint8 image; the format follows the suffix.

    `save_options` go to PIL's ``Image.save`` (e.g. ``compress_level=1`` for fast PNG writing).

    >>> import tempfile
    >>> import numpy as np
    >>> image = np.zeros((8, 16, 3), np.uint8)
    >>> image[:, :8] = (255, 0, 0)  # left half red
    >>> tmpdir = tempfile.TemporaryDirectory()
    >>> path = f"{tmpdir.name}/red.png"
    >>> write_image(path, image)
    >>> back = read_image(path)
    >>> back.shape, back.dtype, back[0, 0].tolist(), bool((back == image).all())
    ((8, 16, 3), dtype('uint8'), [255, 0, 0], True)
    >>> tmpdir.cleanup()
    """
    if image.dtype != np.uint8:
        raise TypeError(f"write_image expects uint8, got {image.dtype} for {path}")
    with atomic_path(path) as tmp:
        fmt = Image.registered_extensions()[Path(path).suffix.lower()]
        Image.fromarray(image).save(tmp, format=fmt, **save_options)


class ImageReadError(ValueError):
    """An image file that cannot be decoded; `reason` is a short human-readable cause."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read any still image as (H, W, 3) uint8 RGB, upright.

    EXIF orientation is applied; grayscale, palette, RGBA/LA (alpha dropped), CMYK and 16-bit or float images are
    converted. Raises `ImageReadError` for missing, empty, truncated or non-image files.

    >>> import tempfile
    >>> tmpdir = tempfile.TemporaryDirectory()
    >>> path = f"{tmpdir.name}/notes.png"
    >>> write_text(path, "not an image")
    >>> try:
    ...     read_image(path)
    ... except ImageReadError as e:
    ...     print(e.reason.split(" (")[0])
    not a readable image
    >>> tmpdir.cleanup()
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "empty file")
        with Image.open(path) as im:
            im.load()  # decode now, so that truncated files fail here
            ImageOps.exif_transpose(im, in_place=True)
            return _to_rgb8(im, path)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(path, f"image too large to decode safely ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:  # PIL raises these for corrupt or unknown data
        raise ImageReadError(path, f"not a readable image ({e})") from None


def _to_rgb8(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode in ("RGB", "L", "P", "PA", "RGBA", "LA", "CMYK", "YCbCr", "LAB", "HSV", "1", "RGBX", "RGBa", "La"):
        if mode == "P" and "transparency" in im.info:
            im = im.convert("RGBA")
        return np.asarray(im.convert("RGB"))
    # High bit depth: "I;16*", "I" (32-bit int) or "F" (float); scale to 8 bits by the type's range.
    a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., :3]
    if mode.startswith("I;16") or a.dtype == np.uint16:
        a8 = a.astype(np.float32) / 257.0
    elif mode == "I":  # 32-bit integers: usually 16-bit data widened by PIL
        a8 = a.astype(np.float64) / (257.0 if a.max() > 255 else 1.0)
    elif mode == "F":
        a8 = a * (255.0 if a.max() <= 1.0 else 1.0)
    else:
        raise ImageReadError(path, f"unsupported image mode {mode}")
    a8 = np.clip(np.round(a8), 0, 255).astype(np.uint8)
    if a8.ndim == 2:
        a8 = np.repeat(a8[..., None], 3, axis=2)
    return np.ascontiguousarray(a8)
