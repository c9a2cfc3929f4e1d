"""Provenance labels: XMP in PNG/JPEG/WebP, container tags in videos, the visible badge, C2PA's optional signing."""

import importlib.util

import av
import numpy as np
import pytest
from PIL import Image

from faceswaplab.provenance import (TRAINED_ALGORITHMIC_MEDIA, Provenance, draw_label, parse_xmp, read_provenance,
                                    video_metadata, xmp_packet)
from faceswaplab.swapping import save_image

INFO = Provenance(method="deepfakes", checkpoint="/runs/x/checkpoints/last.ckpt")


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_xmp_packet_round_trips_and_escapes():
    info = Provenance(method='a<b>&"c"', checkpoint="/tmp/a&b.ckpt")
    got = parse_xmp(xmp_packet(info))
    assert got["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    assert got["method"] == 'a<b>&"c"' and got["checkpoint"] == "/tmp/a&b.ckpt"
    assert got["creator_tool"] == f"faceswaplab {info.version} (a<b>&\"c\")"


def test_xmp_with_a_dtd_is_refused():
    with pytest.raises(ValueError, match="DTD"):
        parse_xmp(b'<!DOCTYPE x [<!ENTITY a "b">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>')


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp"])
def test_every_image_format_carries_the_labels(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    image = _image()
    save_image(path, image, INFO)
    got = read_provenance(path)
    assert got["synthetic"] is True
    assert got["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    assert got["method"] == "deepfakes" and got["checkpoint"] == INFO.checkpoint
    assert got["creator_tool"].startswith("faceswaplab ")
    with Image.open(path) as im:
        assert im.size == (64, 48)
        if suffix == ".png":  # lossless: the label does not touch the pixels
            assert np.array_equal(np.asarray(im.convert("RGB")), image)
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_unlabelled_files_read_as_not_synthetic(tmp_path):
    path = tmp_path / "plain.png"
    save_image(path, _image(), None)
    got = read_provenance(path)
    assert got["synthetic"] is False and "digital_source_type" not in got


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_video_container_tags_round_trip(tmp_path, suffix):
    path = tmp_path / f"v{suffix}"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for k, v in video_metadata(INFO).items():
            c.metadata[k] = v
        for i in range(3):
            for p in s.encode(av.VideoFrame.from_ndarray(_image(i), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    got = read_provenance(path)
    assert got["synthetic"] is True and got["method"] == "deepfakes" and got["checkpoint"] == INFO.checkpoint


@pytest.mark.parametrize("corner", ["top_left", "top_right", "bottom_left", "bottom_right"])
def test_visible_label_stays_in_its_corner(corner):
    image = np.full((120, 200, 3), 128, np.uint8)
    out = draw_label(image, "AI-generated", corner)
    changed = np.argwhere((out != image).any(-1))
    assert len(changed) > 50
    (y0, x0), (y1, x1) = changed.min(0), changed.max(0)
    assert (y1 < 60) == corner.startswith("top") and (y0 >= 60) == corner.startswith("bottom")
    assert (x1 < 100) == corner.endswith("left") and (x0 >= 100) == corner.endswith("right")
    with pytest.raises(ValueError, match="corner"):
        draw_label(image, corner="middle")


@pytest.mark.skipif(importlib.util.find_spec("c2pa") is not None, reason="c2pa-python is installed")
def test_c2pa_without_the_package_says_how_to_get_it(tmp_path, astronaut):
    from faceswaplab.swapping import swap_media

    src = tmp_path / "in.png"
    Image.fromarray(astronaut).save(src)
    with pytest.raises(RuntimeError, match="pip install c2pa-python"):
        swap_media(src, tmp_path / "out.png", method="landmark_warp", source=str(src),
                   c2pa={"sign_cert": "cert.pem", "private_key": "key.pem"}, progress=False)
    assert not (tmp_path / "out.png").exists()
