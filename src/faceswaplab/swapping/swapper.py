"""Swapping the faces of one image or frame: load the method, find and choose the faces, align, swap, paste back."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from faceswaplab.faces.pipeline import find_faces, largest_face, make_backend
from faceswaplab.faces.tracking import FaceTracker
from faceswaplab.io import ImageReadError
from faceswaplab.runs import RunDir
from faceswaplab.swapping.options import NoFaceError, SwapError, SwapOptions

log = logging.getLogger("faceswaplab.swap")


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_swap_method(checkpoint: str | os.PathLike | None = None, method: Any = None, device: str = "auto",
                     size: int = 256):
    """The method to swap with, its crop size and its name for the labels: ``(method, size, name, ckpt)``.

    `checkpoint` is a ``.ckpt`` file or a run directory (its last checkpoint), loaded with
    :func:`faceswaplab.methods.load_method`. Otherwise `method` is a name of ``conf/method/`` (``landmark_warp``),
    a config with ``_target_``, or a :class:`FaceSwapMethod`; learned methods need a checkpoint. The crop size is
    the method's ``image_size`` hyperparameter, else the run's ``config.yaml`` ``data.image_size``, else `size`.
    """
    from faceswaplab.methods import load_method
    from faceswaplab.methods.build import build_method, method_name

    dev = _device(device)
    ckpt_path = None
    if checkpoint is not None:
        try:
            ckpt_path = RunDir.checkpoint_of(checkpoint)
        except FileNotFoundError as e:
            raise SwapError(f"checkpoint={checkpoint}: {e.strerror} at {e.filename}") from None
        model = load_method(ckpt_path, map_location=dev)  # a bad file raises CheckpointError naming it
    elif method is not None:
        try:
            model = build_method(method)
        except ValueError as e:
            raise SwapError(f"method={method}: {e}") from None
    else:
        raise SwapError("give checkpoint=<run dir or .ckpt>, or method=landmark_warp with source=<photo>")
    model = model.to(dev).eval()
    crop = model.hparams.get("image_size") if hasattr(model, "hparams") else None
    if crop is None and ckpt_path is not None:
        run = RunDir.of_checkpoint(ckpt_path)
        crop = run.image_size if run is not None else None
    return model, int(crop or size), method_name(model), ckpt_path


class FaceSwapper:
    """Everything needed to swap the faces of one image: the method, the face backend and the settings.

    ``swapper(frame) -> (frame, faces swapped)``; pass a :class:`FaceTracker` and the frame interval for videos.
    """

    def __init__(self, opts: SwapOptions, checkpoint=None, method=None):
        self.opts = opts
        self.method, self.size, self.name, self.checkpoint = load_swap_method(checkpoint, method, opts.device,
                                                                              opts.size)
        self.device = next(iter(self.method.parameters()), None)
        self.device = self.device.device if self.device is not None else _device(opts.device)
        self.backend = make_backend(opts.backend, opts.detector, opts.upsample)
        if opts.mask.kind != "hull":  # load the occlusion model now: missing weights stop the run before any frame
            from faceswaplab.faces.occlusion import visibility_model

            visibility_model(opts.mask.kind)
        self.needs_source = not getattr(self.method, "identity_specific", False)
        self.source_crop = self.source_landmarks = None
        if self.needs_source:
            if opts.source is None or (isinstance(opts.source, str) and not opts.source):
                raise SwapError(f"{self.name} takes the identity from a photo: pass source=<photo>")
            self.source_crop, self.source_landmarks = self._load_source(opts.source)
        elif opts.source is not None:
            log.warning("source is ignored: %s swaps identities it was trained on (direction=%s)", self.name,
                        opts.direction)
        self.encoder = self.reference = None
        if opts.select == "reference":
            from faceswaplab.faces.backends import FaceEncoder

            self.encoder = FaceEncoder()
            self.reference = self._reference_descriptor(opts.reference)

    # ---- set-up

    def _largest_face(self, path, role: str):
        try:
            image, face = largest_face(self.backend, path, self.opts.detect_size, "auto")
        except ImageReadError as e:
            raise SwapError(f"{role} photo {path}: {e.reason}") from None
        if face is None:
            where = "" if isinstance(path, np.ndarray) else f" {path}"
            raise NoFaceError(f"no face found in the {role} photo{where}")
        return image, face

    def _load_source(self, path: str):
        from faceswaplab.faces.alignment import align_face

        image, face = self._largest_face(path, "source")
        crop, _, lm = align_face(image, face.landmarks, self.size, self.opts.margin)
        return crop, lm.astype(np.float32)

    def _reference_descriptor(self, path: str) -> np.ndarray:
        image, face = self._largest_face(path, "reference")
        return self.encoder(image, face)

    # ---- per frame

    def faces(self, frame: np.ndarray, pad: Any = None, near: list[np.ndarray] | None = None) -> list:
        """The faces (:class:`~faceswaplab.faces.backends.Face`) to swap in `frame`, largest first.

        `near`: boxes where faces were in the previous frame; the search looks around them first (much cheaper
        than the whole frame) and falls back to the whole frame when it finds nothing there.
        """
        faces = self._detect_near(frame, near) if near else []
        if not faces:
            faces = find_faces(self.backend, frame, self.opts.detect_size, pad)
        faces = [f for f in faces if f.width >= self.opts.min_face_size]
        if not faces:
            return []
        faces.sort(key=lambda f: -f.area)
        if self.opts.select == "all":
            return faces
        if self.opts.select == "largest":
            return faces[:1]
        dist = [float(np.linalg.norm(self.encoder(frame, f) - self.reference)) for f in faces]
        best = int(np.argmin(dist))
        return [faces[best]] if dist[best] <= self.opts.tolerance else []

    def _detect_near(self, frame: np.ndarray, boxes: list[np.ndarray]) -> list:
        """Faces found in regions of three times each box's size around it, in frame coordinates."""
        h, w = frame.shape[:2]
        found: list = []
        for x0, y0, x1, y1 in boxes:
            r = max(x1 - x0, y1 - y0)
            rx0, ry0 = int(max(x0 - r, 0)), int(max(y0 - r, 0))
            rx1, ry1 = int(min(x1 + r, w)), int(min(y1 + r, h))
            if rx1 - rx0 < 16 or ry1 - ry0 < 16:
                continue
            # The region spans about three face widths: detected at 320 px the face is ~100 px, enough for any
            # detector, and far cheaper than a large face at full resolution (landmarks stay at full resolution).
            for f in find_faces(self.backend, frame[ry0:ry1, rx0:rx1], min(self.opts.detect_size, 320), None):
                f.box = f.box + [rx0, ry0, rx0, ry0]
                f.landmarks = f.landmarks + [rx0, ry0]
                # Regions of neighbouring faces overlap: keep one copy of each face.
                if all(np.abs(f.landmarks.mean(0) - g.landmarks.mean(0)).max() > 0.2 * f.width for g in found):
                    found.append(f)
        return found

    def locate(self, frame: np.ndarray, tracker: FaceTracker | None = None, dt: float = 1 / 30, pad: Any = None,
               index: int = 0) -> list[np.ndarray]:
        """The (68, 2) landmarks of the faces to swap in `frame`, largest first.

        In videos pass the `tracker` (smoothing, and the search from the previous faces), the frame interval `dt`
        and the frame `index`. Every ``video.redetect_every`` frames the whole frame is searched (for faces that
        appeared); in between, with ``video.track``, the tracked faces' landmarks are refitted in place (no
        detector, see :meth:`FaceTracker.follow`), and when that fails the detector searches near them, then the
        whole frame.
        """
        if tracker is None:
            return [f.landmarks for f in self.faces(frame, pad)]
        v = self.opts.video
        redetect = index % max(v.redetect_every, 1) == 0
        if not redetect and v.track:
            found = tracker.follow(frame, self.backend.landmarks, dt, v.track_similarity)
            if found is not None:
                return found
        faces = self.faces(frame, pad, None if redetect else tracker.boxes())
        return tracker([f.landmarks for f in faces], dt, [f.box for f in faces], frame)

    def align(self, frame: np.ndarray, landmarks: list[np.ndarray]) -> list[tuple]:
        """Aligned crops of the faces with these landmarks: ``[(crop, transform, crop landmarks), ...]``."""
        from faceswaplab.faces.alignment import align_face

        return [align_face(frame, lm, self.size, self.opts.margin) for lm in landmarks]

    def swap_aligned(self, aligned: list[list[tuple]]) -> list[list[tuple]]:
        """Swap the aligned faces of several frames (:meth:`align` of each) in one call of the method.

        Returns per frame ``[(crop, transform, crop landmarks, swapped face (S, S, 3) uint8), ...]``.
        """
        import torch

        from faceswaplab.images import to_image, to_tensor

        flat = [a for per_frame in aligned for a in per_frame]
        if not flat:
            return [[] for _ in aligned]
        crops, _, crop_lms = zip(*flat)
        n = len(crops)
        target = to_tensor(np.stack(crops)).to(self.device)  # (N, 3, S, S)
        target_lm = torch.as_tensor(np.stack(crop_lms), dtype=torch.float32, device=self.device)  # (N, 68, 2)
        kwargs: dict[str, Any] = {"target_landmarks": target_lm}
        if self.needs_source:
            source = to_tensor(self.source_crop)[None].expand(n, -1, -1, -1).to(self.device)
            source_lm = torch.as_tensor(self.source_landmarks, device=self.device)
            kwargs["source_landmarks"] = source_lm[None].expand(n, -1, -1)
        else:
            source = None
            kwargs["direction"] = self.opts.direction
        with torch.inference_mode():
            swapped = iter(to_image(self.method.swap(target, source, **kwargs)))  # (N, S, S, 3)
        return [[(*a, next(swapped)) for a in per_frame] for per_frame in aligned]

    def paste(self, frame: np.ndarray, faces: list[tuple]) -> np.ndarray:
        """`frame` with the swapped faces (:meth:`swap_aligned` of it) blended into a copy, and the label."""
        out = frame.copy() if faces else frame
        for crop, m, lm, face in faces:
            out = self._blend(out, crop, face, m, lm)
        if self.opts.label.visible:
            from faceswaplab.provenance import draw_label

            out = draw_label(out, self.opts.label.text, self.opts.label.corner)
        return out

    def __call__(self, frame: np.ndarray, tracker: FaceTracker | None = None, dt: float = 1 / 30,
                 pad: Any = None, index: int = 0) -> tuple[np.ndarray, int]:
        """Swap the chosen faces of one image or frame: ``(new frame, number of faces swapped)`` (arguments as
        :meth:`locate`)."""
        landmarks = self.locate(frame, tracker, dt, pad, index)
        faces = self.swap_aligned([self.align(frame, landmarks)])[0]
        return self.paste(frame, faces), len(landmarks)

    def _blend(self, frame, crop, face, m, lm) -> np.ndarray:
        return paste_back(frame, crop, face, m, lm, self.size, self.opts)


def paste_mask(crop: np.ndarray, lm: np.ndarray, size: int, opts: SwapOptions) -> np.ndarray:
    """Where the swapped face replaces the target crop (S, S) float32 in [0, 1]: the eroded, feathered hull and,
    with ``mask.kind`` segment or parse, less what covers the target's face (eroded by twice the feather first, so
    that the feathered edge stays off the occluder and its pixels are kept as they are)."""
    import cv2
    import torch

    from faceswaplab.faces import masks
    from faceswaplab.faces.occlusion import visibility
    from faceswaplab.images import to_tensor

    o = opts.mask
    width = float(np.linalg.norm(lm[16] - lm[0]))  # face width in crop pixels
    blur = o.blur * width
    mask = masks.face_hull_mask_np(lm, size, o.forehead, dilate=-o.erode * width, blur=blur)  # (S, S) in [0, 1]
    if o.kind == "hull":
        return mask
    with torch.inference_mode():
        seen = visibility(o.kind, to_tensor(crop)[None])[0, 0].cpu().numpy() > 0.5  # (S, S)
    r = int(np.ceil(2 * blur))
    if r > 0:
        seen = cv2.erode(seen.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    seen = seen.astype(np.float32)
    if blur > 0:
        k = 2 * int(np.ceil(3 * blur)) + 1
        seen = cv2.GaussianBlur(seen, (k, k), blur)
    return mask * seen


def paste_back(frame, crop, face, m, lm, size: int, opts: SwapOptions) -> np.ndarray:
    """Blend the swapped `face` (the aligned crop `crop` of `frame` by transform `m`, with landmarks `lm`) back into
    `frame` through :func:`paste_mask`, with the colour transfer and blend of `opts`; returns `frame`."""
    import cv2

    from faceswaplab.faces import blending
    from faceswaplab.faces.alignment import invert_transform, transform_points

    o = opts
    width = float(np.linalg.norm(lm[16] - lm[0]))  # face width in crop pixels
    mask = paste_mask(crop, lm, size, o)  # (S, S) in [0, 1]
    face = blending.color_transfer(face, crop, mask, mode=o.color)
    # Work in the frame region the crop covers only: cheap on large frames, and every pixel outside the
    # chosen face's mask is left exactly as it was.
    h, w = frame.shape[:2]
    inv = invert_transform(m)
    s = size
    corners = transform_points(np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64), inv)
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 3, [w, h])
    if x1 <= x0 or y1 <= y0:
        return frame
    to_roi = inv.copy()
    to_roi[:, 2] -= (x0, y0)  # crop -> roi pixels
    size_roi = (int(x1 - x0), int(y1 - y0))
    warped = cv2.warpAffine(face, to_roi, size_roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, to_roi, size_roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    roi = frame[y0:y1, x0:x1]
    if o.blend == "seamless":
        warped = blending.seamless_clone(warped, roi, alpha > 0.5, fallback_radius=max(1, round(0.05 * width)))
    a = alpha[..., None]
    blended = a * warped.astype(np.float32) + (1.0 - a) * roi.astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return frame
