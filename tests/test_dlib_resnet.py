"""dlib's face descriptor ResNet in torch: the .dat reader, equality with dlib's C++ (chips and descriptors), the
embedder, the losses."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

dlib = pytest.importorskip("dlib")

from faceswaplab.faces.alignment import align_face  # noqa: E402
from faceswaplab.faces.backends import MissingWeightsError, dlib_model_path  # noqa: E402
from faceswaplab.faces.chip import face_chip  # noqa: E402
from faceswaplab.losses import FacePerceptualLoss, IdentityLoss  # noqa: E402
from faceswaplab.metrics import DependencyUnavailable, DlibEmbedder, pair_auc  # noqa: E402
from faceswaplab.nets.dlib_resnet import DatFormatError, dlib_resnet, read_dlib_dat, weights_path  # noqa: E402

TOL = 1e-4  # per descriptor component


@pytest.fixture(scope="module")
def net():
    return dlib_resnet()


@pytest.fixture(scope="module")
def dlib_models():
    """dlib's C++ descriptor and its 5- and 68-point shape predictors."""
    return (dlib.face_recognition_model_v1(str(weights_path())),
            dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat"))),
            dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat"))))


def _points(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


def _tensor(images, dtype=torch.float32) -> torch.Tensor:
    """(B, H, W, 3) or (H, W, 3) uint8 -> (B, 3, H, W) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images))
    x = x[None] if x.dim() == 3 else x
    return x.permute(0, 3, 1, 2).to(dtype) / 127.5 - 1


def _compare(net, rec, image: np.ndarray, shapes) -> dict:
    """For each dlib shape on `image`: dlib's chip and C++ descriptor vs our chip and torch descriptors."""
    ref_chips = np.stack([dlib.get_face_chip(image, s, 150, 0.25) for s in shapes])
    ref = np.stack([np.asarray(rec.compute_face_descriptor(c)) for c in ref_chips])
    x = _tensor(image, torch.float64)
    ours = torch.cat([face_chip(x, _points(s)[None], quantize=True) for s in shapes])
    ours = ((ours + 1) * 127.5).permute(0, 2, 3, 1).numpy()  # (B, 150, 150, 3)
    with torch.no_grad():
        on_dlib_chip = net(_tensor(ref_chips)).double().numpy()
        end_to_end = net(_tensor(np.round(ours).astype(np.uint8))).double().numpy()
    diff = np.abs(ours - ref_chips)
    return dict(ref=ref, torch=on_dlib_chip, net=np.abs(on_dlib_chip - ref).max(axis=1),
                e2e=np.abs(end_to_end - ref).max(axis=1), chip_max=diff.max(axis=(1, 2, 3)),
                chip_frac=(diff > 0.5).mean(axis=(1, 2, 3)))


def test_reader_rejects_other_files_with_the_file_name(tmp_path):
    cut = tmp_path / "cut.dat"
    cut.write_bytes(weights_path().read_bytes()[:100_000])
    with pytest.raises(DatFormatError, match="cut.dat.*(end of the file|past the end)"):
        read_dlib_dat(cut)
    with pytest.raises(DatFormatError, match="shape_predictor_5_face_landmarks.dat"):
        read_dlib_dat(dlib_model_path("shape_predictor_5_face_landmarks.dat"))


def test_missing_package_is_named(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else find_spec(name, *a))
    with pytest.raises(MissingWeightsError, match="face-recognition-models"):
        dlib_resnet()
    with pytest.raises(DependencyUnavailable, match="face-recognition-models"):
        DlibEmbedder()


def test_level_shapes_and_compile_friendly(net):
    x = torch.zeros(2, 3, 150, 150)
    shapes = [tuple(f.shape[1:]) for f in net.features(x)]
    assert shapes == [(32, 35, 35), (64, 17, 17), (128, 8, 8), (256, 4, 4), (256, 2, 2)]
    assert net(x).shape == (2, 128)
    assert torch._dynamo.explain(net)(x).graph_break_count == 0


@pytest.mark.parametrize("upscale", [1, 3])  # 3: the chip comes from a level of dlib's image pyramid
def test_equals_dlib_on_the_astronaut(net, dlib_models, astronaut, upscale):
    rec, sp5, sp68 = dlib_models
    det = dlib.get_frontal_face_detector()(astronaut, 1)[0]
    image = cv2.resize(astronaut, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
    box = dlib.rectangle(det.left() * upscale, det.top() * upscale, det.right() * upscale, det.bottom() * upscale)
    r = _compare(net, rec, image, [sp5(image, box), sp68(image, box)])
    assert r["net"].max() < TOL and r["e2e"].max() < TOL
    assert r["chip_max"].max() <= 1 and r["chip_frac"].max() < 1e-3


@pytest.mark.slow
def test_equals_dlib_on_every_shared_photo(net, dlib_models, media):
    """Every face of the shared photos: torch descriptor vs dlib's C++ on dlib's chip (and on our chip), and the
    same/different-identity ROC AUC of both on the photos of named people."""
    rec, sp5, _ = dlib_models
    detector = dlib.get_frontal_face_detector()
    results, person_ref, person_torch, person_ids = [], [], [], []
    folders = sorted(p for p in (Path(media) / "photos").iterdir() if p.is_dir())
    for pid, folder in enumerate(folders):
        for path in sorted(folder.iterdir()):
            img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            if max(img.shape[:2]) <= 400:  # the tight 150 px crops: the detector needs context
                pad = max(img.shape[:2]) // 2
                img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            dets = sorted(detector(img, int(max(img.shape[:2]) < 1200)), key=lambda d: -d.area())
            assert dets, f"no face found in {path}"
            r = _compare(net, rec, img, [sp5(img, d) for d in dets])
            results.append(r)
            if folder.name != "groups":  # one person per photo: the largest face
                person_ref.append(r["ref"][0])
                person_torch.append(r["torch"][0])
                person_ids.append(pid)
    cat = {k: np.concatenate([r[k] for r in results]) for k in ("net", "e2e", "chip_max", "chip_frac")}
    e_dlib, e_torch = (F.normalize(torch.as_tensor(np.stack(e)), dim=1) for e in (person_ref, person_torch))
    auc_dlib, auc_torch = pair_auc(e_dlib, person_ids), pair_auc(e_torch, person_ids)
    cos_diff = (e_dlib @ e_dlib.T - e_torch @ e_torch.T).abs().max().item()  # every pair's score
    print(f"\n{len(cat['net'])} faces: max |torch - dlib| {cat['net'].max():.3g} on dlib's chips, "
          f"{cat['e2e'].max():.3g} on torch chips; chips: max pixel difference {cat['chip_max'].max():.0f}, "
          f"{cat['chip_frac'].mean():.2g} of pixels differ; {len(person_ids)} photos of {len(set(person_ids))} "
          f"people: pair cosines differ by at most {cos_diff:.2g}, ROC AUC dlib {auc_dlib:.6f}, torch {auc_torch:.6f}")
    assert len(cat["net"]) >= len(person_ids) > 60
    assert cat["net"].max() < TOL and cat["e2e"].max() < TOL and cos_diff < TOL
    assert auc_torch == pytest.approx(auc_dlib, abs=1e-6)


def test_embedder_backends_agree(astronaut):
    """The metric's torch backend and dlib's C++ on the same aligned crop and (whole-pixel) landmarks."""
    from faceswaplab.faces.backends import DlibBackend

    face = DlibBackend("hog").faces(astronaut)[0]
    crop, _, lm = align_face(astronaut, face.landmarks, 200)
    x, lm = _tensor(crop), torch.as_tensor(np.round(lm))[None]
    e_torch, e_cpp = DlibEmbedder().embed(x, lm), DlibEmbedder(backend="dlib").embed(x, lm)
    assert e_torch.shape == (1, 128)
    assert (e_torch - e_cpp).abs().max() < TOL
    with pytest.raises(ValueError, match="num_jitters"):
        DlibEmbedder(num_jitters=2)


def test_losses(net, astronaut):
    from faceswaplab.faces.backends import DlibBackend

    face = DlibBackend("hog").faces(astronaut)[0]
    crop, _, lm = align_face(astronaut, face.landmarks, 128)
    x = _tensor(crop)
    lm = torch.as_tensor(lm)[None]
    other = torch.flip(x, [2])  # upside down: no longer the same face to the network
    ident = IdentityLoss(net)
    assert ident(x, x, lm, lm).item() == pytest.approx(0, abs=1e-5)
    out = x.clone().requires_grad_()
    loss = ident(out, other, lm)
    assert loss.item() > 0.05
    loss.backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    assert ident(out, ident.embed(other), lm).item() == pytest.approx(loss.item(), abs=1e-6)
    assert list(ident.parameters()) == [] and ident.state_dict() == {}  # frozen, not saved in checkpoints
    perc = FacePerceptualLoss(net)
    assert perc(x, x, lm).item() == 0
    out = x.clone().requires_grad_()
    value = perc(out, x + 0.2 * torch.randn_like(x), lm)
    value.backward()
    assert value.item() > 0 and out.grad.abs().sum() > 0
