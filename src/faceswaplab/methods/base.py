"""The contract every face-swap method follows.

A method is a :class:`lightning.LightningModule` subclass of :class:`FaceSwapMethod`, in one file of
``faceswaplab/methods/`` with one config ``conf/method/<file name>.yaml`` whose ``_target_`` is the class. It:

* implements :meth:`FaceSwapMethod.swap_tensors`: ``target`` and ``source`` are ``(B, 3, H, W)`` aligned crops in
  [-1, 1] on the method's device, landmarks ``(B, 68, 2)`` tensors or None; the result is the target (pose,
  expression, background) with the source's identity, same shape and range. Users call the base class's
  :meth:`FaceSwapMethod.swap`, which also takes numpy and PIL images and converts them for ``swap_tensors``;
* sets the class attributes ``trainable`` (False: ``train`` runs no optimisation steps) and
  ``identity_specific`` (True: trained on the two identities A and B of a pair data module; ``swap`` then takes a
  ``direction`` and may ignore ``source``), and for the contract tests ``tiny`` (constructor arguments of a model
  that trains in seconds) and ``fit_loss`` (the logged loss that must fall, ``train/loss`` by default);
* logs its training losses under ``train/`` (:meth:`FaceSwapMethod.log_losses`): the NaN guard watches those;
* calls ``self.save_hyperparameters()`` in ``__init__``, so that a checkpoint holds its settings and
  ``<Class>.load_from_checkpoint(path)`` (or :func:`load_method`, which needs no class) rebuilds it;
* says in its class docstring what it reads from the batch (keys of :mod:`faceswaplab.data.schema`).

Directions: ``"AtoB"`` turns faces of A into B (the target is an A image, the output has B's identity);
``"BtoA"`` the reverse.

The base class gives every method a preview (rows source | target | swap) and a validation step that needs
no training objective; trainable methods override ``validation_step`` with their own losses as they see fit.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torchvision.utils import make_grid

from faceswaplab import checkpoints
from faceswaplab.checkpoints import CLASS_KEY
from faceswaplab.data.schema import IMAGE, LANDMARKS, MASK, key
from faceswaplab.images import Images, Landmarks, from_batch, resize_batch, to_batch, to_landmarks
from faceswaplab.runs import RunDir

DIRECTIONS = ("AtoB", "BtoA")


def direction_sides(direction: str) -> tuple[str, str]:
    """The (target side, source side) of a pair batch for `direction`: ``"AtoB"`` -> ``("A", "B")``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return (direction[0], direction[-1])


def preview_grid(source: Tensor, target: Tensor, swapped: Tensor, padding: int = 2) -> Tensor:
    """Tile N triples into one image: row i is source i | target i | swap i. Inputs (N, 3, H, W) in [-1, 1].

    Returns (3, H', W') in [-1, 1] (see :func:`faceswaplab.images.to_image` to save it).
    """
    if not (source.shape == target.shape == swapped.shape):
        raise ValueError(f"preview images differ in shape: {source.shape}, {target.shape}, {swapped.shape}")
    rows = torch.stack([source, target, swapped], 1).flatten(0, 1)  # (3N, 3, H, W): s0 t0 w0 s1 t1 w1 ...
    return make_grid(rows.detach().float().cpu(), nrow=3, padding=padding, pad_value=-1.0)


class FaceSwapMethod(L.LightningModule):
    """Base class of all face-swap methods (see the module docstring for the contract)."""

    trainable: ClassVar[bool] = True
    identity_specific: ClassVar[bool] = False
    # Constructor arguments of a model small enough to train a few steps in seconds on 32 px faces (the
    # contract tests and smoke runs use them: `method.<key>=<value>` overrides of its config).
    tiny: ClassVar[dict[str, Any]] = {}
    # The logged training value that must fall when the method fits a handful of faces (the contract tests).
    fit_loss: ClassVar[str] = "train/loss"

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        """Put the source's identity onto the target: (B, 3, H, W) in [-1, 1] -> (B, 3, H, W) in [-1, 1].

        What every method implements. Inputs are on the method's device; landmarks are (B, 68, 2) float pixel
        coordinates of the crops, or None.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement swap_tensors()")

    def swap(self, target: Images, source: Images | None = None, *, target_landmarks: Landmarks = None,
             source_landmarks: Landmarks = None, direction: str | None = None) -> Images:
        """Put the source's identity onto the target; returns the same kind of image(s) as `target`.

        `target` and `source` are **aligned face crops** (as :mod:`faceswaplab.prepare` and the data module
        make them), given as any of:

        * a tensor (B, 3, H, W) or (3, H, W), float in [-1, 1] -> a tensor of the same shape (gradients flow);
        * a numpy image (H, W, 3) or batch (B, H, W, 3), uint8 RGB -> uint8 numpy of the same shape;
        * a PIL image -> a PIL RGB image; a list of numpy or PIL images (one size) -> a list of the same kinds.

        A single `source` is used for every target. Landmarks are (68, 2) or (B, 68, 2) pixel coordinates of
        the crops, numpy or tensor. Identity-specific methods ignore `source` and swap in `direction`
        (``"AtoB"``: targets are faces of A, the outputs have B's identity). Methods with a fixed crop size
        (``image_size``) swap crops of any square size: they are resized to it and the output back. Missing landmarks: the landmark warp detects them with dlib;
        DeepFakes takes the crops as already aligned; pix2pix raises ``ValueError`` (pass the crop's landmarks,
        e.g. from :func:`faceswaplab.data.preparation.prepare`'s ``index.jsonl``, or use :func:`faceswaplab.swapping.swap_media`
        on whole photos and videos).

        >>> import numpy as np
        >>> from faceswaplab.data.synthetic import SyntheticFaces
        >>> from faceswaplab.methods.landmark_warp import LandmarkWarp
        >>> faces = SyntheticFaces(seed=0)
        >>> target, source = faces.sample(0, 0, size=64), faces.sample(1, 0, size=64)
        >>> out = LandmarkWarp().swap(target.image, source.image, target_landmarks=target.landmarks,
        ...                           source_landmarks=source.landmarks)
        >>> out.shape, out.dtype
        ((64, 64, 3), dtype('uint8'))
        >>> bool((out != target.image).any())  # the face changed
        True
        """
        kind, target_t = to_batch(target, self.device, "target")
        n, crop = target_t.shape[0], target_t.shape[-1]
        source_t = None
        if source is not None:
            _, source_t = to_batch(source, self.device, "source")
            if source_t.shape[0] == 1 and n > 1:
                source_t = source_t.expand(n, -1, -1, -1)
            elif source_t.shape[0] != n:
                raise ValueError(f"{source_t.shape[0]} source images for {n} targets (give one, or one per target)")
        target_lm = to_landmarks(target_landmarks, n, self.device, "target_landmarks")
        source_lm = to_landmarks(source_landmarks, n, self.device, "source_landmarks")
        # Methods with a fixed crop size get the crops resized to it (landmarks in step), and the result resized
        # back, so that crops of any size (prepare writes 256 px) go in and come out at their own size.
        size = self.hparams.get("image_size")
        if size is not None:
            target_t, target_lm = resize_batch(target_t, target_lm, size)
            if source_t is not None:
                source_t, source_lm = resize_batch(source_t, source_lm, size)
        kwargs = dict(target_landmarks=target_lm, source_landmarks=source_lm, direction=direction)
        if kind == "tensor":  # tensors pass straight through, on autograd's record
            out, _ = resize_batch(self.swap_tensors(target_t, source_t, **kwargs), None, crop)
            return out.to(target.device) if target.ndim == 4 else out[0].to(target.device)
        with torch.no_grad():
            out, _ = resize_batch(self.swap_tensors(target_t, source_t, **kwargs), None, crop)
        return from_batch(kind, out, target)

    def swap_from_shots(self, target: Images, source: Images, shots: int, given, *, target_landmarks: Landmarks = None,
                        source_landmarks: Landmarks = None) -> Images:
        """:meth:`swap` from `shots` = K source crops per target (K in all, shared by every target, or B * K), for
        methods that take several photos of the source. The crops (B', K, 3, S, S) and their landmarks
        (B', K, 68, 2), resized to the method's ``image_size``, go through ``given(crops, landmarks)``, whose result
        :meth:`swap_tensors` finds in ``self.__dict__["given"]`` (and `source` None) during this swap."""
        name = type(self).__name__
        _, src = to_batch(source, self.device, "source")
        lms = to_landmarks(source_landmarks, len(src), self.device, "source_landmarks")
        if lms is None:
            raise ValueError(f"{name}.swap needs source_landmarks (K, 68, 2) or (B * K, 68, 2) with shots")
        if len(src) % shots:
            raise ValueError(f"shots={shots}: {len(src)} source crops are not K or B * K")
        src, lms = resize_batch(src, lms, self.hparams.image_size)
        size = src.shape[-1]
        self.__dict__["given"] = given(src.view(-1, shots, 3, size, size), lms.view(-1, shots, 68, 2))
        try:
            return self.swap(target, None, target_landmarks=target_landmarks)
        finally:
            self.__dict__.pop("given", None)

    def swap_photo(self, image, source=None, **options):
        """Swap the faces of a whole photo, not an aligned crop: detect, choose, align, swap and paste back as
        ``python -m faceswaplab.swap`` does. `image` and `source` (the identity photo, for methods that take
        one) are numpy (H, W, 3) uint8 RGB, PIL images or file paths; the result is the same kind as `image`.
        `options` are those of :class:`faceswaplab.swapping.SwapOptions` (``direction``, ``select``, ``blend``,
        ``mask``, ...). See :func:`faceswaplab.swapping.images.swap_photo`.
        """
        from faceswaplab.swapping.images import swap_photo

        return swap_photo(self, image, source, **options)

    def swap_video(self, video, output, source=None, **options):
        """Swap the faces of a video file into `output` (``.mp4``, ``.mkv``, ...) as ``python -m faceswaplab.swap``
        does: tracked faces, the audio kept, resumable segments. `source` is the identity photo (a path, array or
        PIL image) for methods that take one; `options` are those of :class:`faceswaplab.swapping.SwapOptions`
        (``video={"max_frames": 90}``, ``overwrite=True``, ...). Returns the run's
        :class:`~faceswaplab.swapping.SwapSummary`.
        """
        from faceswaplab.swapping import swap_media

        options.setdefault("device", str(self.device))
        if isinstance(source, os.PathLike):
            source = str(source)
        elif source is not None and not isinstance(source, str):  # PIL image or array
            source = np.asarray(source.convert("RGB") if hasattr(source, "convert") else source)
        return swap_media(video, output, method=self, source=source, **options)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the class in the checkpoint (for :func:`load_method`); overrides must call ``super()``."""
        checkpoint[CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"

    def adam(self, params, **kwargs) -> torch.optim.Adam:
        """``torch.optim.Adam(params, **kwargs)`` with its fused kernel on a CPU: one pass over each tensor instead of
        a dozen, the same update up to float rounding (the DeepFakes preset's step: 2.3 ms instead of 12.5,
        ``benchmarks/optimizer_step.md``); on other devices torch's default."""
        return torch.optim.Adam(params, fused=True if self.device.type == "cpu" else None, **kwargs)

    def log_losses(self, losses: dict[str, Tensor], total: Tensor, batch_size: int) -> None:
        """Log a training step's `losses` as ``train/<name>`` and `total` as ``train/loss`` (progress bar).

        Lightning's cost per logged value is about a millisecond on a CPU, as much as a small network's step, so
        the terms are logged only on the steps the logger writes and on an epoch's last batch (``metrics.jsonl``
        records them at validation); ``train/loss`` and `fit_loss` every step, and every term on a step where
        one is not finite (the NaN guard, :class:`~faceswaplab.callbacks.FiniteLoss`, reads them all).
        """
        values = {f"train/{k}": v.detach() for k, v in losses.items()}
        if self._trainer is not None and not logs_this_step(self._trainer):
            if bool(torch.isfinite(torch.stack([v.float() for v in values.values()])).all()):
                values = {k: v for k, v in values.items() if k == self.fit_loss}
        self.log_dict(values, batch_size=batch_size)
        self.log("train/loss", total.detach(), prog_bar=True, batch_size=batch_size)

    def swap_pair(self, batch: dict, direction: str = "AtoB") -> tuple[Tensor, Tensor, Tensor]:
        """Swap within a pair batch: returns ``(source, target, swapped)`` images for `direction`."""
        t, s = direction_sides(direction)
        target, source = batch[key(IMAGE, t)], batch[key(IMAGE, s)]
        swapped = self.swap_tensors(target, source, target_landmarks=batch.get(key(LANDMARKS, t)),
                                    source_landmarks=batch.get(key(LANDMARKS, s)), direction=direction)
        return source, target, swapped

    def swap_many(self, images: Tensor, landmarks: Tensor) -> tuple[Tensor, Tensor]:
        """Within a many-identity batch, each face swapped with the one before it as source:
        ``(sources, swapped)``."""
        src = torch.roll(torch.arange(len(images)), 1)
        return images[src], self.swap_tensors(images, images[src], target_landmarks=landmarks,
                                              source_landmarks=landmarks[src])

    @torch.no_grad()
    def preview_triples(self, batch: dict, max_pairs: int = 4) -> tuple[Tensor, Tensor, Tensor]:
        """``(source, target, swapped)``, each (N, 3, H, W), in eval mode: up to `max_pairs` pairs per direction of
        a pair batch, or ``2 * max_pairs`` faces of a many-identity batch (see :meth:`swap_many`)."""
        was_training = self.training
        self.eval()
        try:
            if key(IMAGE, "A") not in batch:
                images = batch[IMAGE][: 2 * max_pairs]
                sources, swapped = self.swap_many(images, batch[LANDMARKS][: 2 * max_pairs])
                return sources, images, swapped
            batch = {k: v[:max_pairs] if isinstance(v, Tensor) else v for k, v in batch.items()}
            triples = [self.swap_pair(batch, d) for d in DIRECTIONS]
        finally:
            self.train(was_training)
        return tuple(torch.cat([tr[i] for tr in triples]) for i in range(3))

    def preview(self, batch: dict, max_pairs: int = 4) -> Tensor:
        """A grid (3, H', W') in [-1, 1] of rows source | target | swap: up to `max_pairs` per direction."""
        return preview_grid(*self.preview_triples(batch, max_pairs))

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        """Swap and log how much the face changed and how well the background was kept.

        ``val/face_change``: mean absolute change inside the target's face mask (0 for a swap that does
        nothing); ``val/background_l1``: mean absolute change outside it (0 for a perfect paste). Pair batches
        (image_X, landmarks_X, mask_X for X in A, B) are swapped both ways; many-identity batches (image,
        landmarks, mask) as :meth:`preview_triples` pairs them.
        """
        if key(IMAGE, "A") in batch:
            changes = []
            for direction in DIRECTIONS:
                t, _ = direction_sides(direction)
                _, target, swapped = self.swap_pair(batch, direction)
                changes.append(_changes(swapped, target, batch[key(MASK, t)]))
            n = batch[key(IMAGE, "A")].shape[0]
        else:
            _, target, swapped = self.preview_triples(batch, max_pairs=len(batch[IMAGE]))
            changes, n = [_changes(swapped, target, batch[MASK][: len(target)])], len(target)
        face, background = (torch.stack(c).mean() for c in zip(*changes))
        metrics = {"val/face_change": face, "val/background_l1": background}
        self.log_dict(metrics, batch_size=n)
        return metrics


def logs_this_step(trainer: L.Trainer) -> bool:
    """Whether this training step's values reach the logger (every ``log_every_n_steps``) or ``metrics.jsonl``
    (an epoch's last batch, before validation): values logged on other steps are only the progress bar's."""
    return (trainer._logger_connector.should_update_logs
            or trainer.fit_loop.epoch_loop.batch_idx + 1 >= trainer.num_training_batches)


def load_method(checkpoint_path: str | os.PathLike, map_location: Any = "cpu", **kwargs: Any) -> FaceSwapMethod:
    """Rebuild whichever method wrote this checkpoint (a ``.ckpt`` file or a run directory), in eval mode;
    `kwargs` override its hyperparameters.

    The file is verified and unpickled weights-only, and its class must be a method of ``faceswaplab.methods``
    (see :mod:`faceswaplab.checkpoints`): a bad file raises :class:`~faceswaplab.checkpoints.CheckpointError`.
    """
    checkpoint_path = RunDir.checkpoint_of(checkpoint_path)
    header = checkpoints.load(checkpoint_path, mmap=True)  # mmap: the tensors are not read here
    cls = checkpoints.method_class(header, checkpoint_path)
    with checkpoints.safe_types():
        return cls.load_from_checkpoint(checkpoint_path, map_location=map_location, weights_only=True,
                                        **kwargs).eval()


def _changes(swapped: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean absolute change of (N, 3, H, W) images inside and outside a (N, 1, H, W) mask."""
    diff = (swapped - target).abs().mean(1, keepdim=True)
    return ((diff * mask).sum() / mask.sum().clamp_min(1.0),
            (diff * (1 - mask)).sum() / (1 - mask).sum().clamp_min(1.0))
