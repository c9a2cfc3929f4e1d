"""Provenance labels: every output of ``faceswaplab.swap`` says, machine-readably, that it is synthetic.

* Images carry an XMP packet with the IPTC digital source type ``trainedAlgorithmicMedia``
  (``Iptc4xmpExt:DigitalSourceType``), ``xmp:CreatorTool`` = ``faceswaplab <version> (<method>)`` and a small
  ``faceswaplab`` namespace (method, checkpoint). PNG stores it in an ``iTXt`` chunk keyed ``XML:com.adobe.xmp``,
  JPEG in an APP1 XMP segment, WebP in its ``XMP`` chunk (all written by Pillow).
* Videos carry the same facts in the container's metadata: ``comment`` holds them as JSON, ``description`` as a
  sentence with the same URI (MP4/MOV write both tags; Matroska any tag).
* Optionally a visible badge ("AI-generated") is drawn into a corner of the pixels (:func:`draw_label`).
* Optionally a C2PA manifest is embedded and signed (:func:`sign_c2pa`; needs the ``c2pa-python`` package).

:func:`read_provenance` reads the labels back from any of these files.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import faceswaplab

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "faceswaplab": "https://github.com/faceswaplab/ns/1.0/",
}
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
PNG_XMP_KEY = "XML:com.adobe.xmp"


@dataclass(frozen=True)
class Provenance:
    """What an output says about itself: that it is synthetic, and which tool, method and checkpoint made it."""

    method: str
    checkpoint: str | None = None
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA
    version: str = faceswaplab.__version__

    @property
    def creator_tool(self) -> str:
        return f"faceswaplab {self.version} ({self.method})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"creator_tool": self.creator_tool}


# ------------------------------------------------------------------------------------------------------ images


def xmp_packet(info: Provenance) -> bytes:
    """The XMP packet (UTF-8 bytes) stating the digital source type, the creator tool, method and checkpoint."""
    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")

    checkpoint = f'\n   faceswaplab:checkpoint="{esc(info.checkpoint)}"' if info.checkpoint else ""
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="{NS["x"]}">\n'
        f' <rdf:RDF xmlns:rdf="{NS["rdf"]}">\n'
        '  <rdf:Description rdf:about=""\n'
        f'   xmlns:xmp="{NS["xmp"]}"\n'
        f'   xmlns:Iptc4xmpExt="{NS["Iptc4xmpExt"]}"\n'
        f'   xmlns:faceswaplab="{NS["faceswaplab"]}"\n'
        f'   Iptc4xmpExt:DigitalSourceType="{esc(info.digital_source_type)}"\n'
        f'   xmp:CreatorTool="{esc(info.creator_tool)}"\n'
        f'   faceswaplab:version="{esc(info.version)}"\n'
        f'   faceswaplab:method="{esc(info.method)}"{checkpoint}/>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
        '<?xpacket end="w"?>'
    )
    return text.encode("utf-8")


def image_save_options(path: str | os.PathLike, info: Provenance | None) -> dict[str, Any]:
    """Pillow ``save`` keyword arguments that embed the XMP packet for this file's format ({} for None)."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise ValueError(f"{path}: cannot label {suffix or 'suffix-less'} images; use one of "
                         f"{', '.join(sorted(IMAGE_FORMATS))}")
    if info is None:
        return {}
    packet = xmp_packet(info)
    if IMAGE_FORMATS[suffix] == "PNG":
        from PIL import PngImagePlugin

        chunk = PngImagePlugin.PngInfo()
        chunk.add_itxt(PNG_XMP_KEY, packet.decode("utf-8"), zip=False)  # uncompressed, as the XMP spec asks
        return {"pnginfo": chunk}
    return {"xmp": packet}


def parse_xmp(packet: bytes | str) -> dict[str, Any]:
    """The provenance fields of an XMP packet (attributes or child elements of rdf:Description)."""
    if isinstance(packet, bytes):
        packet = packet.decode("utf-8", errors="replace")
    # The xpacket processing instructions and BOM are not XML that ElementTree needs to see.
    body = re.sub(r"<\?xpacket[^>]*\?>", "", packet).strip().lstrip("\ufeff")
    if "<!DOCTYPE" in body or "<!ENTITY" in body:  # never expand entities from untrusted files
        raise ValueError("XMP packet with a DTD refused")
    root = ET.fromstring(body)
    wanted = {
        f"{{{NS['Iptc4xmpExt']}}}DigitalSourceType": "digital_source_type",
        f"{{{NS['xmp']}}}CreatorTool": "creator_tool",
        f"{{{NS['faceswaplab']}}}method": "method",
        f"{{{NS['faceswaplab']}}}checkpoint": "checkpoint",
        f"{{{NS['faceswaplab']}}}version": "version",
    }
    out: dict[str, Any] = {}
    for desc in root.iter(f"{{{NS['rdf']}}}Description"):
        for tag, name in wanted.items():
            if tag in desc.attrib:
                out[name] = desc.attrib[tag]
        for child in desc:
            if child.tag in wanted:
                out[wanted[child.tag]] = (child.text or child.get(f"{{{NS['rdf']}}}resource") or "").strip()
    return out


# ------------------------------------------------------------------------------------------------------ videos


def video_metadata(info: Provenance) -> dict[str, str]:
    """Container metadata tags for a video: ``comment`` (JSON) and ``description`` (a sentence)."""
    return {
        "comment": json.dumps(info.as_dict(), sort_keys=True),
        "description": (f"Synthetic media (IPTC digital source type {info.digital_source_type}) "
                        f"made with {info.creator_tool}"),
    }


def _parse_video_tags(tags: dict[str, str]) -> dict[str, Any]:
    lowered = {k.lower(): v for k, v in tags.items()}
    comment = lowered.get("comment", "")
    try:
        data = json.loads(comment)
    except (json.JSONDecodeError, TypeError):
        data = None
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if v is not None}
    text = " ".join(str(v) for v in lowered.values())
    return {"digital_source_type": TRAINED_ALGORITHMIC_MEDIA} if TRAINED_ALGORITHMIC_MEDIA in text else {}


# ------------------------------------------------------------------------------------------------------ reading


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance labels of an image (PNG, JPEG, WebP) or video (MP4, MOV, MKV) written by faceswaplab.

    Returns ``{"synthetic": bool, "digital_source_type", "creator_tool", "method", "checkpoint", "version",
    "c2pa": bool}`` with the fields that were found; ``synthetic`` is True when the IPTC digital source type says
    the media was made by a trained algorithm.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_FORMATS:
        from PIL import Image

        with Image.open(path) as im:
            packet = im.info.get("xmp") or im.info.get(PNG_XMP_KEY)
        found = parse_xmp(packet) if packet else {}
    else:
        import av

        with av.open(str(path)) as container:
            tags = dict(container.metadata)
        found = _parse_video_tags(tags)
    found["synthetic"] = found.get("digital_source_type") == TRAINED_ALGORITHMIC_MEDIA
    found["c2pa"] = _has_c2pa(path)
    return found


def _has_c2pa(path: Path) -> bool:
    """Whether the file holds a C2PA manifest store (its JUMBF label appears in the bytes)."""
    with open(path, "rb") as f:
        head = f.read(8 << 20)
    return b"c2pa" in head and b"jumb" in head


# ------------------------------------------------------------------------------------------------------ pixels


def draw_label(image: np.ndarray, text: str = "AI-generated", corner: str = "bottom_right",
               scale: float = 0.035) -> np.ndarray:
    """A copy of `image` (H, W, 3) uint8 with a small badge reading `text` in a `corner`.

    The text height is `scale` times the image's short side (at least 8 px); the badge is light text on a
    translucent dark box, readable on any background.
    """
    import cv2

    corners = ("top_left", "top_right", "bottom_left", "bottom_right")
    if corner not in corners:
        raise ValueError(f"label corner must be one of {corners}, got {corner!r}")
    h, w = image.shape[:2]
    px = max(8, int(round(scale * min(h, w))))
    font = cv2.FONT_HERSHEY_SIMPLEX
    fs = cv2.getFontScaleFromHeight(font, px, 1)
    thick = max(1, px // 10)
    (tw, th), base = cv2.getTextSize(text, font, fs, thick)
    pad = max(2, px // 3)
    bw, bh = min(tw + 2 * pad, w), min(th + base + 2 * pad, h)
    x0 = pad if "left" in corner else max(w - bw - pad, 0)
    y0 = pad if "top" in corner else max(h - bh - pad, 0)
    out = image.copy()
    box = out[y0 : y0 + bh, x0 : x0 + bw]
    box[:] = (box.astype(np.float32) * 0.35).astype(np.uint8)
    cv2.putText(out, text, (x0 + pad, y0 + pad + th), font, fs, (255, 255, 255), thick, cv2.LINE_AA)
    return out


# ------------------------------------------------------------------------------------------------------ C2PA


def check_c2pa_available() -> None:
    """Raise a clear error when C2PA signing was asked for but ``c2pa-python`` is not installed."""
    import importlib.util

    if importlib.util.find_spec("c2pa") is None:
        raise RuntimeError("C2PA signing is configured (c2pa.sign_cert, c2pa.private_key) but the c2pa package is "
                           "missing: pip install c2pa-python")


def sign_c2pa(path: str | os.PathLike, info: Provenance, sign_cert: str | os.PathLike,
              private_key: str | os.PathLike, alg: str = "es256", tsa_url: str | None = None) -> None:
    """Embed a signed C2PA manifest into the file at `path` (in place, atomically).

    The manifest has a ``c2pa.actions`` assertion ``c2pa.created`` with the digital source type
    ``trainedAlgorithmicMedia`` and names faceswaplab as the claim generator. Needs ``c2pa-python``.
    """
    check_c2pa_available()
    import c2pa

    from faceswaplab.io import atomic_path

    path = Path(path)
    manifest = {
        "claim_generator": info.creator_tool.replace(" ", "/", 1),
        "title": path.name,
        "assertions": [{
            "label": "c2pa.actions",
            "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": info.digital_source_type,
                "softwareAgent": info.creator_tool,
            }]},
        }],
    }
    cert = Path(sign_cert).read_bytes()
    key = Path(private_key).read_bytes()
    signer_info = c2pa.C2paSignerInfo(alg=alg.encode(), sign_cert=cert, private_key=key,
                                      ta_url=tsa_url.encode() if tsa_url else None)
    signer = c2pa.Signer.from_info(signer_info)
    builder = c2pa.Builder(manifest)
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
            ".mp4": "video/mp4", ".mov": "video/quicktime"}.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: C2PA signing supports {{png, jpg, webp, mp4, mov}}, not {path.suffix}")
    with atomic_path(path) as tmp, open(path, "rb") as src, open(tmp, "w+b") as dst:
        builder.sign(signer, mime, src, dst)
