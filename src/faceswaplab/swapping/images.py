"""Writing swapped still images with their provenance labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceswaplab.io import atomic_path, read_image
from faceswaplab.provenance import IMAGE_FORMATS, Provenance
from faceswaplab.swapping.options import C2paOptions, NoFaceError, SwapOptions, SwapSummary
from faceswaplab.swapping.swapper import FaceSwapper


def provenance_of(swapper: FaceSwapper, opts: SwapOptions) -> Provenance | None:
    if not opts.label.metadata:
        return None
    ckpt = swapper.checkpoint
    # The run folder and file name identify the model; the rest of the path (user names, mounts) stays private.
    name = Path(*Path(ckpt).resolve().parts[-3:]).as_posix() if ckpt else None
    return Provenance(method=swapper.name, checkpoint=name)


def save_image(path: str | os.PathLike, image: np.ndarray, info: Provenance | None, jpeg_quality: int = 95,
               c2pa: C2paOptions | None = None) -> None:
    """Atomically write an (H, W, 3) uint8 RGB image with its provenance labels (format from the suffix)."""
    from PIL import Image

    from faceswaplab.provenance import image_save_options

    path = Path(path)
    options = image_save_options(path, info)
    fmt = IMAGE_FORMATS[path.suffix.lower()]
    if fmt == "JPEG":
        options["quality"] = jpeg_quality
    elif fmt == "WEBP":
        options["quality"] = jpeg_quality
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **options)
        if c2pa is not None and c2pa.enabled and info is not None:
            sign(tmp, info, c2pa)


def sign(path: Path, info: Provenance, c2pa: C2paOptions) -> None:
    from faceswaplab.provenance import sign_c2pa

    sign_c2pa(path, info, c2pa.sign_cert, c2pa.private_key, c2pa.alg, c2pa.tsa_url)


def swap_image(swapper: FaceSwapper, src: Path, dst: Path, summary: SwapSummary) -> None:
    opts = swapper.opts
    image = read_image(src)  # ImageReadError names the file
    out, n = swapper(image, pad=opts.pad)
    summary.frames += 1
    if n == 0:
        summary.frames_without_face += 1
        raise NoFaceError(f"no face to swap in {src}"
                          + (" (none matches the reference)" if opts.select == "reference" else ""))
    save_image(dst, out, provenance_of(swapper, opts), opts.jpeg_quality, opts.c2pa)
    summary.faces += n
    summary.images += 1
    summary.outputs.append(str(dst))


def swap_photo(method, image, source=None, **options):
    """Swap the faces of a whole photo in memory as :func:`~faceswaplab.swapping.swap_media` does (detect, choose,
    align, swap, paste back): `image` and `source` are (H, W, 3) uint8 RGB arrays, PIL images or file paths; the
    result is the kind `image` was (an array for a path). `options` are those of :class:`SwapOptions`.

    In memory there is no file to carry the provenance labels: save the result with :func:`save_image` to keep them.
    Raises :class:`NoFaceError` when no face was swapped.
    """
    from PIL import Image

    def array(x):
        if isinstance(x, Image.Image):
            return np.asarray(x.convert("RGB"))
        return read_image(Path(x)) if isinstance(x, (str, os.PathLike)) else np.asarray(x)

    options.setdefault("device", str(method.device))  # swap where the method is
    opts = SwapOptions.from_dict({**options, "source": None if source is None else array(source)})
    opts.validate()
    out, n = FaceSwapper(opts, method=method)(array(image), pad=opts.pad)
    if n == 0:
        raise NoFaceError("no face to swap in the image" + (" (none matches the reference)"
                                                             if opts.select == "reference" else ""))
    return Image.fromarray(out) if isinstance(image, Image.Image) else out

