"""The renderer: :class:`SyntheticFaces` draws a scene, shades it and lays it over the background."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceswaplab.data.schema import EXPRESSION_NAMES
from faceswaplab.data.synthetic.identity import Identity, make_identity
from faceswaplab.data.synthetic.lighting import (
    Background, Light, _background_image, _shading, random_background, random_light,
)
from faceswaplab.data.synthetic.occluders import OCCLUDERS, draw_occluder
from faceswaplab.data.synthetic.scene import _Scene
from faceswaplab.data.synthetic.shape import _rotation
from faceswaplab.faces import template as T


@dataclass
class FaceRender:
    """One rendered face and its ground truth."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) float32, pixel coords
    mask: np.ndarray  # (H, W) float32 in [0, 1]
    identity: int
    pose: np.ndarray  # (3,) float32 yaw, pitch, roll in degrees
    expression: np.ndarray  # (4,) float32 mouth_open, smile, brow_raise, blink
    visible: np.ndarray  # (H, W) float32 in [0, 1]: the face mask less what an occluder hides
    occluder: str | None = None  # what covers part of the face (one of OCCLUDERS), if anything


def _supersample(size: int) -> int:
    """Internal resolution factor: small renders are drawn larger and box-filtered down (anti-aliased lines alone
    look fine from about 200 px)."""
    return 4 if size <= 64 else 2 if size < 200 else 1


class SyntheticFaces:
    """A population of procedural identities; `sample` draws deterministic, varied renders of each.

    >>> import numpy as np
    >>> faces = SyntheticFaces(seed=0)
    >>> face = faces.sample(identity=2, index=0, size=64)  # a random pose, expression, light and background
    >>> face.image.shape, face.image.dtype, face.landmarks.shape, face.identity
    ((64, 64, 3), dtype('uint8'), (68, 2), 2)
    >>> np.array_equal(faces.sample(2, 0, size=64).image, face.image)  # deterministic
    True
    >>> smile = faces.render(2, size=64, pose=(20, 0, 0), expression=(0, 1, 0, 0))  # turned right, smiling
    >>> smile.mask.shape, bool(smile.mask.max() == 1.0)
    ((64, 64), True)
    >>> front = faces.render(2, size=64)
    >>> [round(float(f.landmarks[30, 0]), 1) for f in (front, smile)]  # the nose tip's x: centred, then right
    [31.5, 34.8]
    """

    def __init__(self, seed: int = 0, num_identities: int = 8, occlusion: float = 0.0):
        if num_identities < 1:
            raise ValueError(f"num_identities must be >= 1, got {num_identities}")
        if not 0.0 <= occlusion <= 1.0:
            raise ValueError(f"occlusion is the share of renders with an occluder, in [0, 1], got {occlusion}")
        self.seed = int(seed)
        self.num_identities = int(num_identities)
        self.occlusion = float(occlusion)

    def __repr__(self) -> str:
        occ = f", occlusion={self.occlusion}" if self.occlusion else ""
        return f"SyntheticFaces(seed={self.seed}, num_identities={self.num_identities}{occ})"

    def identity(self, i: int) -> Identity:
        """The fixed parameters of identity `i` (any i >= 0)."""
        return make_identity(self.seed, int(i))

    def sample(self, identity: int, index: int, size: int = 128, *, max_yaw: float = 35.0, max_pitch: float = 20.0,
               max_roll: float = 15.0) -> FaceRender:
        """Render image `index` of `identity`; the variation is drawn deterministically from (seed, identity, index).

        Pose is uniform in +-(max_yaw, max_pitch, max_roll) degrees; each expression parameter is active in
        40-45% of the images (blinks 15%); light, background, +-5% scale, +-3% shift and gaze vary too. A share
        `occlusion` of the renders has an occluder (a kind of :data:`OCCLUDERS` at random) over the face; it
        comes from its own random stream, so the rest of a render does not depend on the rate.
        """
        rng = self._sample_rng(identity, index)
        pose = rng.uniform(-1, 1, 3) * [max_yaw, max_pitch, max_roll]
        expression = np.where(rng.uniform(size=4) < [0.45, 0.45, 0.4, 0.15], rng.uniform(size=4), 0.0)
        expression[3] = 0.3 + 0.7 * expression[3] if expression[3] > 0 else 0.0  # blinks are mostly closed
        occ_rng = np.random.default_rng([self.seed, int(identity), int(index), 3])
        occluder = str(occ_rng.choice(OCCLUDERS)) if occ_rng.uniform() < self.occlusion else None
        return self.render(
            identity, size, pose=pose, expression=expression, light=random_light(rng),
            background=random_background(rng), scale=1.0 + rng.uniform(-0.05, 0.05),
            shift=tuple(rng.uniform(-0.03, 0.03, 2)), gaze=tuple(rng.uniform(-0.6, 0.6, 2)), occluder=occluder,
            occluder_rng=occ_rng)

    def sample_pose(self, identity: int, index: int, *, max_yaw: float = 35.0, max_pitch: float = 20.0,
                    max_roll: float = 15.0) -> np.ndarray:
        """The pose (yaw, pitch, roll degrees, (3,) float32) that :meth:`sample` renders image `index` of
        `identity` at, without rendering it."""
        pose = self._sample_rng(identity, index).uniform(-1, 1, 3) * [max_yaw, max_pitch, max_roll]
        return pose.astype(np.float32)

    def _sample_rng(self, identity: int, index: int) -> np.random.Generator:
        if identity < 0 or index < 0:
            raise ValueError(f"identity and index must be >= 0, got identity={identity}, index={index}")
        return np.random.default_rng([self.seed, int(identity), int(index), 2])

    def render(self, identity: int | Identity, size: int = 128, *, pose=(0.0, 0.0, 0.0),
               expression=(0.0, 0.0, 0.0, 0.0), light: Light | None = None,
               background: Background | tuple | np.ndarray | None = None, scale: float = 1.0, shift=(0.0, 0.0),
               gaze=(0.0, 0.0), occluder: str | None = None, occluder_rng: np.random.Generator | None = None,
               ) -> FaceRender:
        """Render `identity` (an index or an :class:`Identity`) at `pose` (yaw, pitch, roll degrees) with `expression`.

        `expression` is (mouth_open, smile, brow_raise, blink) in [0, 1]; `background` a :class:`Background`, an RGB
        colour or a (size, size, 3) uint8 image; `scale` and `shift` (fractions of `size`) move the face from the
        canonical framing; `gaze` (x, y in [-1, 1]) moves the irises. `occluder` (one of :data:`OCCLUDERS`) is
        drawn over the face, placed by `occluder_rng` (default: seeded by the identity).
        """
        if not 16 <= size <= 1024:
            raise ValueError(f"size must be in [16, 1024], got {size}")
        idn = identity if isinstance(identity, Identity) else self.identity(identity)
        pose = np.asarray(pose, np.float64).reshape(3)
        expression = np.clip(np.asarray(expression, np.float64).reshape(len(EXPRESSION_NAMES)), 0.0, 1.0)
        light = light or Light()
        ss = _supersample(size)
        # template units -> output pixels: the canonical framing, scaled and shifted about the crop centre
        m = T.template_to_crop(size)
        c = (size - 1) / 2.0
        m_out = m * scale
        m_out[:, 2] = c + scale * (m[:, 2] - c) + np.asarray(shift, np.float64) * size
        # output pixels -> internal pixels (pixel centres at integers in both)
        m_int = m_out * ss
        m_int[:, 2] += (ss - 1) / 2.0
        rot = _rotation(pose)
        scene = _Scene(idn, expression, rot, m_int, size * ss, light, np.asarray(gaze, np.float64))
        canvas, face_mask = scene.draw()
        if ss > 1:  # box-filter the supersampled canvas (premultiplied RGBA) and mask
            canvas = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
            face_mask = cv2.resize(face_mask, (size, size), interpolation=cv2.INTER_AREA)
        # image = background * (1 - alpha) + shading * premultiplied foreground (in place: this is the hot loop)
        out = canvas[..., :3].astype(np.float32)
        out *= _shading(size, m_out, rot, light)
        clear = canvas[..., 3:].astype(np.float32)
        clear *= -1.0 / 255.0
        clear += 1.0
        bg = _background_image(background, size).astype(np.float32)
        bg *= clear
        out += bg
        out += 0.5
        image = np.clip(out, 0, 255, out=out).astype(np.uint8)
        landmarks = (scene.p2[:68] - (ss - 1) / 2.0) / ss
        mask = face_mask.astype(np.float32) * (1.0 / 255.0)
        visible = mask
        if occluder is not None:
            rng = occluder_rng if occluder_rng is not None else np.random.default_rng([self.seed, int(idn.index), 3])
            rgb, alpha = draw_occluder(occluder, landmarks, size, ss, rng)
            # the layer is premultiplied: over = rgb + image * (1 - alpha)
            over = rgb + image.astype(np.float32) * (1.0 - alpha[..., None]) + 0.5
            image = np.clip(over, 0, 255).astype(np.uint8)
            visible = mask * (1.0 - alpha)
        return FaceRender(
            image=image, landmarks=landmarks.astype(np.float32), mask=mask, identity=int(idn.index),
            pose=pose.astype(np.float32), expression=expression.astype(np.float32), visible=visible,
            occluder=occluder)
