"""Face-identity embedders behind one interface: ``embed(images, landmarks=None) -> (B, D)`` L2-normalised.

Backends (:func:`build_embedder` by name; :data:`DEFAULT_EMBEDDER` is the benchmark's choice):

* ``dlib``: dlib's ResNet face-recognition model (128-d), shipped in ``face_recognition_models``, run in torch
  (:mod:`faceswaplab.nets.dlib_resnet`, batched, CPU or GPU) on the chip dlib's alignment cuts from our landmarks
  (nothing is re-detected); ``dlib_cpp`` runs dlib's C++ instead (for comparison).
* ``facenet``: facenet-pytorch's InceptionResnetV1 trained on VGGFace2 (512-d); its weights download on first use.
* ``arcface``: any ArcFace ONNX model (e.g. insightface's ``w600k_r50.onnx``), run through onnxruntime.
* ``synthetic``: a small CNN trained by :func:`train_synthetic_embedder` on renders of 200 procedural identities
  (a population disjoint from the benchmark's); the default model ships in ``faceswaplab/assets``, others are
  trained into :func:`~faceswaplab.metrics.weights.cache_dir`.

Why the default is ``synthetic``: dlib's model was trained on photos; on the cartoon renders of
:mod:`faceswaplab.data.synthetic` it separates identities with ROC AUC 0.948 (8 identities x 20 renders, random
pose/expression, 128 px), under the 0.95 the benchmark requires; the synthetic CNN reaches the figure recorded
in ``experiments/embedder_auc.md``. On real photos use ``dlib`` (or ``facenet``/``arcface`` where their weights
are available).

Images are aligned crops (B, 3, H, W) in [-1, 1]; landmarks (B, 68, 2) in crop pixels. Without landmarks the
crops are assumed to follow the canonical framing (:func:`faceswaplab.faces.template.canonical_landmarks`).

Command line: ``python -m faceswaplab.metrics.embedder_auc`` trains the synthetic embedder (``--train``) and prints
the same-vs-different identity ROC AUC of each backend on the synthetic faces and on real photos (``--photos``), as
:func:`faceswaplab.metrics.separation.synthetic_auc` and ``photo_folder_auc`` compute them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path
from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceswaplab.faces import template as T
from faceswaplab.faces.alignment import similarity_transform
from faceswaplab.faces.chip import face_chip
from faceswaplab.metrics.weights import (
    WeightsUnavailable, cache_dir, facenet_weights, require_package,
)
from faceswaplab.nets.dlib_resnet import dlib_resnet, weights_path as dlib_weights_path

DEFAULT_EMBEDDER = "synthetic"
EMBEDDERS = ("dlib", "dlib_cpp", "facenet", "arcface", "synthetic")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 RGB."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


def _landmarks_or_canonical(images: torch.Tensor, landmarks) -> np.ndarray:
    B, _, H, W = images.shape
    if landmarks is None:
        if H != W:
            raise ValueError(f"without landmarks the crops must be square canonical crops, got {H}x{W}")
        return np.broadcast_to(T.canonical_landmarks(H), (B, 68, 2)).astype(np.float64)
    lm = torch.as_tensor(landmarks).detach().cpu().double().numpy() if not isinstance(landmarks, np.ndarray) \
        else np.asarray(landmarks, np.float64)
    if lm.shape != (B, 68, 2):
        raise ValueError(f"landmarks must be ({B}, 68, 2), got {lm.shape}")
    return lm


def warp_region(images: torch.Tensor, landmarks: np.ndarray, box, size: int) -> torch.Tensor:
    """Resample the template-unit box ``(x0, y0, x1, y1)`` of each face to a `size` x `size` image.

    The template -> image map is the similarity fitted on the INNER landmarks (B, 68, 2); bilinear, border
    replicated. Returns (B, 3, size, size).
    """
    B, _, H, W = images.shape
    x0, y0, x1, y1 = box
    g = (np.arange(size) + 0.5) / size
    tx, ty = np.meshgrid(x0 + g * (x1 - x0), y0 + g * (y1 - y0))  # (size, size) template coords
    tpts = np.stack([tx, ty, np.ones_like(tx)], -1)  # (size, size, 3)
    mean2d = T.mean_face_2d()[T.INNER]
    grids = []
    for lm in landmarks:
        m = similarity_transform(mean2d, lm[T.INNER])  # template -> image pixels
        p = tpts @ m.T  # (size, size, 2) image pixels
        grids.append(np.stack([(2 * p[..., 0] + 1) / W - 1, (2 * p[..., 1] + 1) / H - 1], -1))
    grid = torch.as_tensor(np.stack(grids), dtype=images.dtype, device=images.device)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class FaceEmbedder(ABC):
    """Maps aligned face crops to L2-normalised identity embeddings."""

    name: str = ""
    dim: int = 0

    @abstractmethod
    def embed(self, images: torch.Tensor, landmarks=None) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] (+ optional (B, 68, 2) crop-pixel landmarks) -> (B, D) float32, unit norm."""

    def __call__(self, images: torch.Tensor, landmarks=None) -> torch.Tensor:
        return self.embed(images, landmarks)


# ------------------------------------------------------------------------------------------------------ dlib


class DlibEmbedder(FaceEmbedder):
    """dlib's ResNet descriptor (128-d) on the face chip dlib's alignment cuts from our 68 landmarks.

    ``backend="torch"`` (default) cuts the chips with :func:`faceswaplab.faces.chip.face_chip` and runs
    :class:`~faceswaplab.nets.dlib_resnet.DlibFaceResNet` batched on `device`; ``backend="dlib"`` calls dlib's
    C++ ``compute_face_descriptor`` one face at a time (landmarks rounded to whole pixels, as dlib stores them;
    ``num_jitters`` > 0 only there), named ``dlib_cpp`` (:func:`build_embedder` and the benchmark's
    ``embedder=dlib_cpp``). On the same chips the two agree within 1e-4 per component (tests/test_dlib_resnet.py).
    """

    name, dim = "dlib", 128
    # dlib's own operating point: Euclidean distance 0.6 between raw descriptors. Their norm is 1.44 (sd 0.03 on
    # the shared photos), so on unit vectors that is a cosine similarity of 1 - 0.6^2 / (2 * 1.44^2) = 0.913.
    match_threshold = 1 - 0.6**2 / (2 * 1.44**2)

    def __init__(self, num_jitters: int = 0, padding: float = 0.25, backend: str = "torch",
                 device: str | torch.device = "cpu", batch_size: int = 32):
        require_package("face_recognition_models", "face-recognition-models", "the dlib embedder")
        if backend not in ("torch", "dlib"):
            raise ValueError(f"dlib embedder backend must be 'torch' or 'dlib', got {backend!r}")
        if backend == "torch" and num_jitters:
            raise ValueError("num_jitters needs backend='dlib' (the torch backend computes plain descriptors)")
        self.backend, self.num_jitters, self.padding = backend, int(num_jitters), float(padding)
        self.name = "dlib" if backend == "torch" else "dlib_cpp"
        self.device, self.batch_size = torch.device(device), int(batch_size)
        self.weights_path = dlib_weights_path()  # recorded by the benchmark
        if backend == "torch":
            self.net = dlib_resnet(self.device)
        else:
            import dlib

            from faceswaplab.faces.backends import _dlib_model

            self._dlib = dlib
            self._net = _dlib_model("face_recognition_model_v1", "dlib_face_recognition_resnet_model_v1.dat")

    def shape(self, landmarks: np.ndarray):
        """A ``dlib.full_object_detection`` from (68, 2) pixel landmarks (box = their bounding box)."""
        d = self._dlib
        x0, y0 = np.floor(landmarks.min(0)).astype(int)
        x1, y1 = np.ceil(landmarks.max(0)).astype(int)
        pts = [d.point(int(round(x)), int(round(y))) for x, y in landmarks]
        return d.full_object_detection(d.rectangle(int(x0), int(y0), int(x1), int(y1)), pts)

    @torch.no_grad()
    def embed(self, images, landmarks=None):
        lms = _landmarks_or_canonical(images, landmarks)
        if self.backend == "dlib":
            e = torch.as_tensor(np.stack([
                np.asarray(self._net.compute_face_descriptor(img, self.shape(lm), self.num_jitters, self.padding))
                for img, lm in zip(to_uint8(images), lms)]), dtype=torch.float32)
            return F.normalize(e, dim=1)
        out = []
        for s in range(0, len(images), self.batch_size):
            # 8-bit images and chips, as the C++ path has them, so that the two give the same numbers.
            x = images[s:s + self.batch_size].float().clamp(-1, 1).to(self.device)
            x = torch.round((x + 1) * 127.5) / 127.5 - 1
            out.append(self.net(face_chip(x, lms[s:s + self.batch_size], padding=self.padding, quantize=True)))
        return F.normalize(torch.cat(out).float(), dim=1).cpu()


# --------------------------------------------------------------------------------------------------- facenet


class FacenetEmbedder(FaceEmbedder):
    """facenet-pytorch's InceptionResnetV1 (512-d) on a 160 px crop of the face box (MTCNN-like framing).

    ``pretrained=None`` builds the network with random weights: only for testing a pipeline offline (its
    embeddings carry no identity).
    """

    name, dim = "facenet", 512

    def __init__(self, pretrained: str | None = "vggface2", device: str | torch.device = "cpu"):
        if pretrained is not None:
            facenet_weights(pretrained)  # raises WeightsUnavailable before facenet-pytorch would try to download
        from facenet_pytorch import InceptionResnetV1

        self.device = torch.device(device)
        self.net = InceptionResnetV1(pretrained=pretrained).eval().to(self.device)

    @torch.no_grad()
    def embed(self, images, landmarks=None):
        lms = _landmarks_or_canonical(images, landmarks)
        # MTCNN boxes span brows to chin and ear to ear; facenet-pytorch adds a small margin around them.
        x = warp_region(images.float().to(self.device), lms, (-1.1, -0.75, 1.1, 1.65), 160)
        return F.normalize(self.net(x).float(), dim=1).cpu()


# --------------------------------------------------------------------------------------------------- arcface

# The 5-point ArcFace alignment template for 112 x 112 crops (eyes, nose tip, mouth corners), in pixels.
ARCFACE_5PTS = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                         [70.7299, 92.2041]])


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(..., 68, 2) -> (..., 5, 2): eye centres, nose tip, mouth corners (the ArcFace/MTCNN 5-point set)."""
    lm = np.asarray(landmarks, np.float64)
    return np.stack([lm[..., T.EYE_LEFT, :].mean(-2), lm[..., T.EYE_RIGHT, :].mean(-2), lm[..., 30, :],
                     lm[..., 48, :], lm[..., 54, :]], -2)


class ArcfaceEmbedder(FaceEmbedder):
    """An ArcFace ONNX model (input (B, 3, 112, 112) RGB in [-1, 1], 5-point aligned) run by onnxruntime."""

    name = "arcface"

    def __init__(self, model_path: str | None = None, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        from pathlib import Path

        hint = ("pass model_path=<an ArcFace .onnx file, e.g. insightface's buffalo_l/w600k_r50.onnx, "
                "input 1x3x112x112>")
        require_package("onnxruntime", "onnxruntime", f"the arcface embedder ({hint})")
        if model_path is None:
            raise WeightsUnavailable("arcface embedder", "<model_path>.onnx", hint.capitalize() + ".")
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise WeightsUnavailable("arcface embedder", path, hint.capitalize() + ".")
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=list(providers))
        self.input_name = self.session.get_inputs()[0].name
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def embed(self, images, landmarks=None):
        import cv2

        lms = _landmarks_or_canonical(images, landmarks)
        crops = []
        for img, lm in zip(to_uint8(images), lms):
            m = similarity_transform(five_points(lm), ARCFACE_5PTS)
            crops.append(cv2.warpAffine(img, m, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        x = (np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) - 127.5) / 127.5
        e = torch.as_tensor(self.session.run(None, {self.input_name: x})[0], dtype=torch.float32)
        return F.normalize(e, dim=1)


# ------------------------------------------------------------------------------------------------- synthetic

# The inner face in template units: brows to chin, cheek to cheek (hair and background stay out, because a
# face swap keeps the target's).
SYNTHETIC_REGION = (-1.1, -0.75, 1.1, 1.45)
SYNTHETIC_TRAIN = dict(seed=1000, identities=200, renders=24, size=128, input=48, dim=128, epochs=14,
                       batch=64, lr=3e-3, margin=0.2, scale=16.0, version=1)


class SyntheticEmbedNet(nn.Module):
    """A small CNN: (B, 3, 48, 48) inner-face crop -> (B, dim) unit embedding."""

    def __init__(self, dim: int = 128, width: int = 16):
        super().__init__()

        def block(cin, cout, stride):
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        w = width
        self.features = nn.Sequential(
            *block(3, w, 1), *block(w, 2 * w, 2), *block(2 * w, 2 * w, 1),  # 24
            *block(2 * w, 4 * w, 2), *block(4 * w, 4 * w, 1),  # 12
            *block(4 * w, 8 * w, 2), *block(8 * w, 8 * w, 1),  # 6
        )
        self.head = nn.Linear(8 * w, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).mean((2, 3))  # (B, 8w)
        return F.normalize(self.head(h), dim=1)


# The embedder trained with the default config ships with the package (about 1 MB), made by
# `python -m faceswaplab.metrics.embedder_auc --train --backend synthetic` (see experiments/embedder_auc.md).
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def synthetic_weights_path(config: dict | None = None):
    """Where the synthetic embedder trained with `config` lives (keyed by a hash of the config): the copy shipped
    in the package when there is one, else faceswaplab's cache (where training writes it)."""
    cfg = dict(SYNTHETIC_TRAIN, **(config or {}))
    key = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:10]
    name = f"synthetic_embedder-{key}.pt"
    return ASSETS / name if (ASSETS / name).is_file() else cache_dir() / name


def _synthetic_inputs(images: torch.Tensor, landmarks: np.ndarray, size: int) -> torch.Tensor:
    return warp_region(images.float(), landmarks, SYNTHETIC_REGION, size)


def train_synthetic_embedder(config: dict | None = None, verbose: bool = True):
    """Train the synthetic embedder (CosFace loss over the identities of a population disjoint from the benchmark's:
    seed 1000) and save it atomically to :func:`synthetic_weights_path`. Seeded, so reruns give the same model.

    Takes about half an hour on a busy 2-core CPU (4800 renders, 14 epochs of a 0.3 M-parameter CNN).
    """
    from faceswaplab.data.synthetic import SyntheticFaces
    from faceswaplab.io import atomic_path

    cfg = dict(SYNTHETIC_TRAIN, **(config or {}))
    gen = torch.Generator().manual_seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    faces = SyntheticFaces(cfg["seed"], cfg["identities"])
    n_id, n_r = cfg["identities"], cfg["renders"]
    xs, ids = [], []
    for i in range(n_id):  # render once, keep only the small inner-face crops
        rs = [faces.sample(i, k, cfg["size"]) for k in range(n_r)]
        img = torch.as_tensor(np.stack([r.image for r in rs])).permute(0, 3, 1, 2).float() / 127.5 - 1
        lm = np.stack([r.landmarks for r in rs]).astype(np.float64)
        # Crop a little wider than the region so that shift/scale augmentation can be applied later.
        xs.append(warp_region(img, lm, _grow(SYNTHETIC_REGION, 1.15), int(round(cfg["input"] * 1.15))))
        ids += [i] * n_r
    x_all = torch.cat(xs)
    y_all = torch.as_tensor(ids)
    net = SyntheticEmbedNet(cfg["dim"])
    classes = nn.Parameter(torch.randn(n_id, cfg["dim"], generator=gen) * 0.01)
    params = list(net.parameters()) + [classes]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=5e-4)
    steps = cfg["epochs"] * math.ceil(len(x_all) / cfg["batch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg["lr"], total_steps=steps, pct_start=0.15)
    net.train()
    for epoch in range(cfg["epochs"]):
        perm = torch.randperm(len(x_all), generator=gen)
        total, correct = 0.0, 0
        for s in range(0, len(perm), cfg["batch"]):
            b = perm[s:s + cfg["batch"]]
            x = _augment(x_all[b], cfg["input"], gen)
            y = y_all[b]
            cos = net(x) @ F.normalize(classes, dim=1).T  # (b, n_id)
            logits = cfg["scale"] * (cos - cfg["margin"] * F.one_hot(y, n_id))
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(b)
            correct += int((cos.argmax(1) == y).sum())
        if verbose:
            print(f"epoch {epoch + 1}/{cfg['epochs']}: loss {total / len(x_all):.3f}, "
                  f"train accuracy {correct / len(x_all):.3f}", flush=True)
    net.eval()
    path = cache_dir() / synthetic_weights_path(config).name
    with atomic_path(path) as tmp:
        torch.save({"config": cfg, "state_dict": net.state_dict()}, tmp)
    return path


def _grow(box, f):
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * f, (y1 - y0) / 2 * f
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def _augment(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Random shift/scale crop to `size`, blur (swap outputs are often soft), brightness/contrast jitter, noise."""
    B = len(x)
    s = 1.0 / 1.15 * (1 + 0.06 * (torch.rand(B, generator=gen) * 2 - 1))  # (B,) crop scale in the padded input
    t = 0.05 * (torch.rand(B, 2, generator=gen) * 2 - 1)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = s, s, t
    grid = F.affine_grid(theta, (B, 3, size, size), align_corners=False)
    out = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    blur = torch.rand(B, generator=gen) < 0.3
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0]) / 4
        k2 = (k[:, None] * k[None]).expand(3, 1, 3, 3)
        out[blur] = F.conv2d(F.pad(out[blur], (1, 1, 1, 1), mode="replicate"), k2, groups=3)
    gain = 1 + 0.15 * (torch.rand(B, 1, 1, 1, generator=gen) * 2 - 1)
    bias = 0.1 * (torch.rand(B, 1, 1, 1, generator=gen) * 2 - 1)
    out = out * gain + bias + 0.02 * torch.randn(out.shape, generator=gen)
    return out.clamp(-1, 1)


class SyntheticEmbedder(FaceEmbedder):
    """The CNN of :func:`train_synthetic_embedder` (128-d) for faces of :mod:`faceswaplab.data.synthetic`.

    `train=True` trains and caches the model when it is missing (seeded, ~30 min on CPU); otherwise a missing
    model raises :class:`WeightsUnavailable` with the command that makes it.
    """

    name = "synthetic"

    def __init__(self, weights_path=None, train: bool = False, device: str | torch.device = "cpu",
                 config: dict | None = None):
        path = Path(weights_path) if weights_path is not None else synthetic_weights_path(config)
        if not path.is_file():
            if train and weights_path is None:
                path = train_synthetic_embedder(config)
            else:
                raise WeightsUnavailable(
                    "synthetic identity embedder", path,
                    "Make it (seeded; about half an hour on a 2-core CPU): "
                    "python -m faceswaplab.metrics.embedder_auc --train --backend synthetic")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        cfg = ckpt["config"]
        self.input = int(cfg["input"])
        self.dim = int(cfg["dim"])
        self.device = torch.device(device)
        self.net = SyntheticEmbedNet(self.dim)
        self.net.load_state_dict(ckpt["state_dict"])
        self.net.eval().to(self.device)

    @torch.no_grad()
    def embed(self, images, landmarks=None):
        lms = _landmarks_or_canonical(images, landmarks)
        x = _synthetic_inputs(images.to(self.device), lms, self.input)
        return self.net(x).float().cpu()


# ------------------------------------------------------------------------------------------------------ API


def build_embedder(name: str = DEFAULT_EMBEDDER, **kwargs) -> FaceEmbedder:
    """The embedder `name` (one of :data:`EMBEDDERS`); raises a :class:`MetricUnavailable` when it can't run."""
    classes = {"dlib": DlibEmbedder, "dlib_cpp": functools.partial(DlibEmbedder, backend="dlib"),
               "facenet": FacenetEmbedder, "arcface": ArcfaceEmbedder, "synthetic": SyntheticEmbedder}
    if name not in classes:
        raise ValueError(f"unknown embedder {name!r}: expected one of {EMBEDDERS}")
    return classes[name](**kwargs)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the boolean labels `positive` (Mann-Whitney U, ties averaged)."""
    from scipy.stats import rankdata

    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("ROC AUC needs both positive and negative pairs")
    r = rankdata(scores)
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def pair_auc(embeddings: torch.Tensor, identities) -> float:
    """ROC AUC of cosine similarity for same- vs different-identity pairs among all pairs of `embeddings` (N, D)."""
    e = F.normalize(torch.as_tensor(embeddings).double(), dim=1)
    ids = torch.as_tensor(identities)
    iu = torch.triu_indices(len(e), len(e), 1)
    sim = (e @ e.T)[iu[0], iu[1]]
    same = (ids[:, None] == ids[None])[iu[0], iu[1]]
    return roc_auc(sim.numpy(), same.numpy())
