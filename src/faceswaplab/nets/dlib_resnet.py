"""dlib's ResNet face descriptor as a plain ``nn.Module``, with its weights read from dlib's own ``.dat`` file.

The network is the one of dlib's ``dnn_face_recognition_ex``: a 150x150 RGB face chip -> 7x7/2 convolution,
max-pool 3/2, 14 residual blocks in levels of 32, 64, 128 and 256 channels, global average pool, a 128-d
``fc_no_bias``. Davis King trained it (99.38 % on LFW) and released the weights into the public domain; they ship
in the ``face-recognition-models`` package (``dlib_face_recognition_resnet_model_v1.dat``). This module parses
that file in Python (dlib's serialisation format) so that the network runs batched, with gradients, on CPU or GPU,
without dlib.

Behaviour that differs from torchvision's ResNets and must be matched for equal outputs:

* input: ``(pixel - channel_mean) / 256`` with dlib's means stored in the file (122.782, 117.001, 104.298);
* strided convolutions and pools have no padding (dlib's default padding is ``k // 2`` only for stride 1);
* batch norm was frozen into per-channel ``affine`` layers at the end of training (folded into the convolutions
  here);
* the down-sampling blocks add a 2x2 average-pooled shortcut that keeps the input's channel count, and dlib's
  ``add_prev`` adds tensors of different shapes over their overlap, zero elsewhere (channels 32 -> 64 and, at
  8 -> 4 px, a 3x3 conv output added to a 4x4 pooled shortcut);
* the output is the raw 128-d descriptor (not normalised); dlib calls two faces the same person below a
  Euclidean distance of 0.6.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
# (channels, blocks, first block down-samples) per level, from input to output.
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class DatFormatError(ValueError):
    """The file is not a dlib network serialisation of the expected layout."""


# ---------------------------------------------------------------------------------------- dlib's serialisation


class _Reader:
    """Reads dlib's ``serialize()`` encodings (dlib/serialize.h) from bytes."""

    def __init__(self, data: bytes, path):
        self.buf, self.pos, self.path = memoryview(data), 0, path

    def fail(self, msg: str):
        raise DatFormatError(f"{self.path}: {msg} at byte {self.pos}")

    def int(self) -> int:
        # A control byte (bit 7: sign, bits 0-3: byte count) then the magnitude, little endian.
        if self.pos >= len(self.buf):
            self.fail("unexpected end of file")
        c = self.buf[self.pos]
        n = c & 0x0F
        if c & 0x70 or n > 8:
            self.fail(f"bad integer control byte {c:#x}")
        v = int.from_bytes(self.buf[self.pos + 1:self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -v if c & 0x80 else v

    def float(self) -> float:
        # float_details: mantissa (int64) then exponent (int16); value = mantissa * 2**exponent.
        if self.pos < len(self.buf) and self.buf[self.pos] & 0x70:
            self.fail("old ASCII float encoding is not supported")
        m, e = self.int(), self.int()
        specials = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return specials[e] if e in specials else math.ldexp(m, e)

    def bool(self) -> bool:
        c = bytes(self.buf[self.pos:self.pos + 1])
        if c not in (b"0", b"1"):
            self.fail(f"bad bool {c!r}")
        self.pos += 1
        return c == b"1"

    def str(self) -> str:
        n = self.int()
        if not 0 <= n <= 256 or self.pos + n > len(self.buf):
            self.fail(f"expected a layer name, found a length of {n}")
        s = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return s.decode("latin-1")

    def peek_str(self) -> str | None:
        """The string at the current position if one plausibly starts here (no move)."""
        pos = self.pos
        try:
            n = self.int()
            s = bytes(self.buf[self.pos:self.pos + n]) if 0 < n < 64 else b""
        except DatFormatError:
            s = b""
        self.pos = pos
        return s.decode("latin-1") if s.isascii() and s.replace(b"_", b"").isalnum() else None

    def tensor(self) -> np.ndarray:
        # resizable_tensor: version 2, (num_samples, k, nr, nc), then little-endian float32 values.
        if (v := self.int()) != 2:
            self.fail(f"unknown tensor version {v}")
        shape = tuple(self.int() for _ in range(4))
        n = math.prod(shape)
        if self.pos + 4 * n > len(self.buf):
            self.fail(f"tensor {shape} runs past the end of the file")
        a = np.frombuffer(self.buf, "<f4", n, self.pos).reshape(shape)
        self.pos += 4 * n
        return a

    def alias(self) -> tuple[int, ...]:
        if (v := self.int()) != 1:
            self.fail(f"unknown alias_tensor version {v}")
        return tuple(self.int() for _ in range(4))


@dataclass
class DatLayer:
    """One layer of a dlib network file: its dlib type (``con``, ``fc``, ``affine``, ...) and what it stores."""

    kind: str
    params: dict = field(default_factory=dict)


def _details(r: _Reader) -> DatLayer:
    """The ``serialize(details)`` of one computational layer (dlib/dnn/layers.h, input.h, loss.h)."""
    version = r.str()
    kind = version.rstrip("0123456789").rstrip("_")
    p: dict = {}
    if kind == "con":  # con_4 .. con_6
        params = r.tensor()
        p["filters"], p["rows"], p["cols"] = r.int(), r.int(), r.int()
        p["stride"], p["padding"] = (r.int(), r.int()), (r.int(), r.int())
        w, b = r.alias(), r.alias()
        [r.float() for _ in range(4)]  # learning-rate and weight-decay multipliers
        use_bias = r.bool() if version in ("con_5", "con_6") else True
        if version == "con_6":
            r.bool()  # use_relu: a fused relu (only set by dlib's fuse_layers; a separate relu_ follows here)
        flat = params.reshape(-1)
        p["weight"] = flat[:math.prod(w)].reshape(w)  # (out, in, kh, kw), as torch
        p["bias"] = flat[math.prod(w):math.prod(w) + math.prod(b)].reshape(-1) if use_bias else None
    elif kind == "fc":  # fc_2, fc_3
        p["outputs"], p["inputs"] = r.int(), r.int()
        params = r.tensor()
        w, b = r.alias(), r.alias()
        p["bias_mode"] = r.int()
        [r.float() for _ in range(4)]
        use_bias = r.bool() if version == "fc_3" else True
        flat = params.reshape(-1)
        p["weight"] = flat[:math.prod(w)].reshape(w[0], w[1])  # (inputs, outputs): y = x @ W
        p["bias"] = flat[math.prod(w):].reshape(-1) if use_bias and p["bias_mode"] == 0 else None
    elif kind == "affine":  # affine_, affine_2: y = gamma * x + beta per channel
        params = r.tensor().reshape(-1)
        g, _ = r.alias(), r.alias()
        p["mode"] = r.int()
        if version == "affine_2":
            r.bool()  # disabled
        n = math.prod(g)
        p["gamma"], p["beta"] = params[:n], params[n:2 * n]
    elif kind in ("max_pool", "avg_pool"):
        p["rows"], p["cols"] = r.int(), r.int()
        p["stride"], p["padding"] = (r.int(), r.int()), (r.int(), r.int())
    elif kind == "relu":
        if version == "relu_2":
            r.bool()
    elif kind == "add_prev":
        pass
    elif kind == "input_rgb_image_sized":
        p["mean"] = (r.float(), r.float(), r.float())
        p["size"] = (r.int(), r.int())
    elif kind == "loss_metric":
        if version == "loss_metric_2":
            p["margin"], p["distance_threshold"] = r.float(), r.float()
    else:
        r.fail(f"unsupported dlib layer {version[:40]!r}")
    return DatLayer(kind, p)


def read_dlib_dat(path) -> list[DatLayer]:
    """Parse a dlib DNN file into its layers, input first. Tags and skips appear as ``tag_or_skip``.

    The file nests layers from the loss inwards: each wrapper writes a version number, then its sub-network, then
    its own details, so the details follow in input-to-output order. dlib writes ``add_layer`` as version 2 (3
    for the layer on the input) and ``tag``/``skip`` layers as version 1; which tag a layer refers to is not stored
    (it is part of the C++ type), so the architecture itself comes from the code.
    """
    path = Path(path)
    r = _Reader(path.read_bytes(), path)
    if r.int() != 1:
        r.fail("not a dlib network with a loss layer (add_loss_layer version 1)")
    layers = [_details(r)]  # the loss
    wrappers = []  # versions, loss inwards
    while r.peek_str() is None:
        wrappers.append(r.int())
    if not wrappers or wrappers[-1] not in (2, 3):
        r.fail("no input layer found")
    inner = [_details(r)]  # the input layer (serialised inside the first add_layer)
    for i, v in enumerate(reversed(wrappers)):
        if v == 1:  # tag or skip: nothing after the sub-network
            inner.append(DatLayer("tag_or_skip"))
            continue
        if v not in (2, 3):
            r.fail(f"unknown layer wrapper version {v}")
        inner.append(_details(r))
        r.bool(), r.bool(), r.bool()  # setup called, gradient stale, output/gradient disabled
        r.tensor(), r.tensor()  # x_grad, cached_output (empty in a saved model)
        if i == 0:  # the add_layer on the input stores grad_final (+ the sample expansion factor since v3)
            r.tensor()
            if v >= 3:
                r.int()
        elif v == 2:
            r.tensor()  # params_grad
    if r.pos != len(r.buf):
        r.fail(f"{len(r.buf) - r.pos} trailing bytes")
    return inner + layers


# ------------------------------------------------------------------------------------------------- the network


def _add_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: a + b over the larger of their (C, H, W) shapes, each zero where it has no value."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def grow(t):  # F.pad pads the last dims first: (W left, W right, H left, H right, C left, C right)
        return F.pad(t, (0, shape[2] - t.shape[3], 0, shape[1] - t.shape[2], 0, shape[0] - t.shape[1]))

    return grow(a) + grow(b)


class DlibResBlock(nn.Module):
    """dlib's ``ares`` (or ``ares_down``): relu(x' + bn(conv(relu(bn(conv(x)))))), affine folded into the convs.

    Down-sampling: the first conv has stride 2 and no padding, and x' = avg_pool(x, 2, 2) (same channels as x)."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, 2 if down else 1, 0 if down else 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        if self.down:
            return F.relu(_add_overlap(y, F.avg_pool2d(x, 2, 2)))
        return F.relu(y + x)


class DlibFaceResNet(nn.Module):
    """dlib's face descriptor network: (B, 3, 150, 150) face chips in [-1, 1] -> (B, 128) raw descriptors.

    :meth:`from_dat` builds it with the shipped weights (:func:`dlib_resnet`); :meth:`features` returns the
    output of each level (for perceptual losses). Chips must be cut as ``dlib.get_face_chip`` cuts them
    (:mod:`faceswaplab.faces.chip`).
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([122.782, 117.001, 104.298]).view(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 32, 7, 2, 0)
        levels, cin = [], 32
        for cout, n, down in LEVELS:
            levels.append(nn.Sequential(*[DlibResBlock(cin if i == 0 else cout, cout, down and i == 0)
                                          for i in range(n)]))
            cin = cout
        self.levels = nn.ModuleList(levels)
        self.fc = nn.Linear(256, 128, bias=False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, 150, 150) in [-1, 1] -> the output of every level: 32x35x35, 64x17x17, 128x8x8, 256x4x4,
        256x2x2."""
        x = ((x + 1) * 127.5 - self.mean) / 256  # dlib's input_rgb_image: pixel values minus the channel means
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)  # (B, 32, 35, 35)
        out = []
        for level in self.levels:
            x = level(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)[-1].mean((2, 3)))  # (B, 128)

    def expected_layout(self) -> list[str]:
        """The layer kinds dlib writes for this architecture, input first (tags and skips as ``tag_or_skip``)."""
        kinds = ["input_rgb_image_sized", "con", "affine", "relu", "max_pool"]
        for level in self.levels:
            for block in level:
                kinds += ["tag_or_skip", "con", "affine", "relu", "con", "affine"]
                kinds += ["tag_or_skip", "tag_or_skip", "avg_pool", "add_prev", "relu"] if block.down \
                    else ["add_prev", "relu"]
        return kinds + ["avg_pool", "fc", "loss_metric"]

    def convs(self) -> list[nn.Conv2d]:
        """The convolutions in dlib's order (input first), each with its affine layer folded in."""
        return [self.stem] + [c for level in self.levels for b in level for c in (b.conv1, b.conv2)]

    @classmethod
    def from_dat(cls, path) -> "DlibFaceResNet":
        """The network with the weights of dlib's ``.dat`` file at `path` (checked against the architecture)."""
        net = cls()
        layers = read_dlib_dat(path)
        kinds = [layer.kind for layer in layers]
        if kinds != net.expected_layout():
            raise DatFormatError(f"{path}: not dlib's face recognition ResNet (layers {kinds[:8]}...)")
        inp = layers[0].params
        if inp["size"] != (CHIP_SIZE, CHIP_SIZE):
            raise DatFormatError(f"{path}: input size {inp['size']}, expected {CHIP_SIZE}x{CHIP_SIZE}")
        cons = [layer.params for layer in layers if layer.kind == "con"]
        affines = [layer.params for layer in layers if layer.kind == "affine"]
        pools = [layer.params for layer in layers if layer.kind.endswith("pool")]
        if any(p["padding"] != (0, 0) for p in pools[:-1]):
            raise DatFormatError(f"{path}: padded pooling is not dlib's face ResNet")
        with torch.no_grad():
            net.mean.copy_(torch.tensor(inp["mean"]).view(1, 3, 1, 1))
            for conv, c, a in zip(net.convs(), cons, affines):
                if (tuple(conv.weight.shape) != c["weight"].shape or conv.stride != c["stride"]
                        or conv.padding != c["padding"]):
                    raise DatFormatError(f"{path}: convolution {c['weight'].shape} stride {c['stride']} padding "
                                         f"{c['padding']} does not fit {tuple(conv.weight.shape)}")
                g, b = torch.from_numpy(a["gamma"].copy()), torch.from_numpy(a["beta"].copy())
                bias = torch.from_numpy(c["bias"].copy()) if c["bias"] is not None else torch.zeros_like(g)
                # affine(conv(x)) = g * (w * x + bias) + b
                conv.weight.copy_(torch.from_numpy(c["weight"].copy()) * g.view(-1, 1, 1, 1))
                conv.bias.copy_(bias * g + b)
            fc = layers[-2].params
            if fc["weight"].shape != (256, 128) or fc["bias"] is not None:
                raise DatFormatError(f"{path}: the last layer is not a 256 -> 128 fc_no_bias")
            net.fc.weight.copy_(torch.from_numpy(fc["weight"].T.copy()))
        return net.eval()


def weights_path() -> Path:
    """``dlib_face_recognition_resnet_model_v1.dat`` in the installed ``face_recognition_models`` package."""
    from faceswaplab.faces.backends import dlib_model_path

    return dlib_model_path(WEIGHTS_FILE)


@functools.lru_cache(maxsize=2)
def _state(path: Path) -> dict:
    return DlibFaceResNet.from_dat(path).state_dict()


def dlib_resnet(device: str | torch.device = "cpu") -> DlibFaceResNet:
    """A fresh :class:`DlibFaceResNet` with the weights shipped in ``face-recognition-models`` (parsed once per
    process), in eval mode; raises :class:`~faceswaplab.faces.backends.MissingWeightsError` naming the package
    when it is not installed."""
    net = DlibFaceResNet()
    net.load_state_dict(_state(weights_path()))
    return net.eval().to(device)
