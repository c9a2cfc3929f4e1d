"""The DeepFakes autoencoder: one shared encoder, one decoder per identity; swap A -> B = decoder_B(encoder(a)).

Each step reconstructs both identities from randomly warped copies of their faces, so the encoder must learn
pose and expression rather than copy pixels; the decoders learn to draw their own identity from that code.
With ``align`` (the default) every face is first fitted to the canonical template by a similarity on its
landmarks, as faceswap trains on aligned faces: head roll, scale and shift then no longer move the eyes and mouth
around the crop, and the autoencoder learns features much sooner. The swap is warped back onto the target.
The losses and the learned mask follow the batch's ``mask_X``: with the data module's ``mask=segment`` (or
``parse``) it excludes hands, hair and glasses in front of the face, so the decoder is neither trained to draw
occluders nor to include them in its mask, and the swap leaves the target's occluders in place.

``arch="liae"`` is DeepFaceLab's LIAE instead (shared encoder, shared inter AB, inter B, one shared decoder; see
:class:`faceswaplab.nets.LIAE`). ``loss`` picks the reconstruction objective: ours (``l1_ssim``) or the presets of
faceswap and DeepFaceLab (:mod:`faceswaplab.losses.autoencoder`). The schedule practitioners follow is built in:
random warp switched off after ``warp_off_step`` iterations, learning-rate dropout (DeepFaceLab: each weight's
update kept with probability ``lr_dropout``) from ``lr_dropout_step``, the adversarial term from
``adversarial_step``, and gradient clipping to a global norm ``grad_clip``.

Loss names:
    loss_l1_X, loss_mse_X, loss_ssim_X, loss_eyes_mouth_X   the reconstruction terms of decoder_X(encoder(warp(x)))
                                                            against x (see the loss presets)
    loss_mask_X  the decoder's mask against the face mask (L1 for l1_ssim, MSE for the presets)
    loss_G_X     optional adversarial term against a PatchGAN of identity X (LSGAN); loss_D_X its discriminator
    loss_X       the sum for identity X
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from faceswaplab.data.augment import apply_affine, random_warp
from faceswaplab.faces.alignment import alignment_transform_batch, invert_transform_batch
from faceswaplab.losses import GANLoss, reconstruction_terms
from faceswaplab.losses.autoencoder import PRESETS
from faceswaplab.methods.base import FaceSwapMethod, direction_sides
from faceswaplab.nets import LIAE, Decoder, Encoder, PatchDiscriminator, init_weights

SIDES = ("A", "B")


class DeepFakes(FaceSwapMethod):
    """Shared encoder + decoder_A + decoder_B (faceswap's "original" model at 64 px, scalable to 128 and 256), or
    DeepFaceLab's LIAE.

    Reads ``image_X``, ``mask_X`` and ``parts_X`` (eye and mouth regions) for X in A, B, and ``landmarks_X``
    with ``align``. ``swap(target, direction="AtoB")`` decodes an A face as B and, when the decoder learns a
    mask, pastes the result onto the target through that mask, so the target's background is kept. ``source``
    is ignored. With ``align``, the target's landmarks place the face in the template frame; without them the
    crop is taken as already aligned. LIAE's own swap direction is ``BtoA`` (DeepFaceLab's dst -> src).

    The defaults are faceswap's: the "original" widths, its loss (SSIM + MSE, eye and mouth multipliers 3 and
    2, learned mask), random warp of 5/256 of the image size and Adam 5e-5 with betas (0.5, 0.999).
    """

    identity_specific = True
    tiny = {"enc_width": 8, "latent": 32, "dense_channels": 32, "code_channels": 16, "dec_width": 16, "lr": 1e-3}
    fit_loss = "train/loss_A"

    def __init__(
        self,
        image_size: int,
        loss: str = "faceswap",
        l1_weight: float = 0.0,
        mse_weight: float = 1.0,
        ssim_weight: float = 1.0,
        eye_multiplier: float = 3.0,
        mouth_multiplier: float = 2.0,
        eyes_mouth_weight: float = 0.0,
        mask_weight: float = 1.0,
        adversarial_weight: float = 0.0,
        arch: str = "df",
        warp_strength: float = 5 / 256,
        warp_grid: int = 5,
        enc_width: int = 128,
        latent: int = 1024,
        dense_channels: int = 1024,
        code_channels: int = 512,
        dec_width: int = 64,
        learn_mask: bool = True,
        align: bool = True,
        disc_width: int = 64,
        lr: float = 5e-5,
        beta1: float = 0.5,
        beta2: float = 0.999,
        grad_clip: float = 0.0,
        warp_off_step: int | None = None,
        lr_dropout: float = 1.0,
        lr_dropout_step: int = 0,
        adversarial_step: int = 0,
    ):
        super().__init__()
        if loss not in PRESETS:
            raise ValueError(f"method.loss: unknown DeepFakes loss {loss!r}, expected one of {PRESETS}")
        if not 0 < lr_dropout <= 1:
            raise ValueError(f"method.lr_dropout: the probability of keeping an update, in (0, 1], got {lr_dropout}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        if arch == "df":
            self.encoder = Encoder(image_size, enc_width, latent, dense_channels, code_channels)
            self.decoders = torch.nn.ModuleDict(
                {x: Decoder(image_size, dec_width, code_channels, mask=learn_mask) for x in SIDES}
            )
        elif arch == "liae":
            self.liae = LIAE(image_size, enc_width, latent, dense_channels, code_channels, dec_width, learn_mask)
        else:
            raise ValueError(f"method.arch: unknown DeepFakes architecture {arch!r}, expected 'df' or 'liae'")
        self.discriminators = None
        if adversarial_weight > 0:
            self.discriminators = torch.nn.ModuleDict({x: init_weights(PatchDiscriminator(3, disc_width)) for x in SIDES})
            self.criterion_gan = GANLoss("lsgan")
        self.iterations = 0  # training batches done (the schedule's clock; kept in checkpoints)

    def autoencoder_parameters(self) -> list[torch.nn.Parameter]:
        """Everything but the discriminators."""
        skip = set() if self.discriminators is None else set(self.discriminators.parameters())
        return [p for p in self.parameters() if p not in skip]

    def decode(self, images: Tensor, side: str) -> tuple[Tensor, Tensor | None]:
        """(N, 3, S, S) -> decoder_side(encoder(images)): the face (N, 3, S, S) and its mask (N, 1, S, S) or None."""
        out = self.liae(images, side) if self.hparams.arch == "liae" else self.decoders[side](self.encoder(images))
        return out if self.hparams.learn_mask else (out, None)

    def decode_sides(self, images: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor | None]]:
        """``decode(images[x], x)`` for both sides, the shared encoder run once over both batches: it has no
        batch statistics, so this is the same up to float rounding, in larger and fewer kernels."""
        both = self.encoder if self.hparams.arch == "df" else self.liae.encoder
        feats = both(torch.cat([images[x] for x in SIDES])).split([len(images[x]) for x in SIDES])
        out = {}
        for x, h in zip(SIDES, feats):
            y = self.decoders[x](h) if self.hparams.arch == "df" else self.liae.decode(h, x)
            out[x] = y if self.hparams.learn_mask else (y, None)
        return out

    def to_template(self, landmarks: Tensor, image: Tensor, *maps: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """Warp an image (N, 3, S, S) and maps (N, C, S, S) of the same crops into the template frame.

        Returns (aligned image, aligned maps, the (N, 2, 3) crop -> template-frame transforms).
        """
        m = alignment_transform_batch(landmarks, self.hparams.image_size)
        return apply_affine(image, m), [apply_affine(x, m, padding="zeros") for x in maps], m

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        _, s = direction_sides(direction or "AtoB")
        if not self.hparams.align or target_landmarks is None:
            face, mask = self.decode(target, s)
            return face if mask is None else mask * face + (1 - mask) * target
        aligned, _, m = self.to_template(target_landmarks, target)
        face, mask = self.decode(aligned, s)
        back = invert_transform_batch(m)
        # Outside the warped-back crop the mask is 0: the target shows through.
        mask = apply_affine(torch.ones_like(face[:, :1]) if mask is None else mask, back, padding="zeros")
        return mask * apply_affine(face, back) + (1 - mask) * target

    def configure_optimizers(self):
        hp = self.hparams
        betas = (hp.beta1, hp.beta2)
        opt_g = self.adam(self.autoencoder_parameters(), lr=hp.lr, betas=betas)
        if self.discriminators is None:
            return opt_g
        return [opt_g, self.adam(self.discriminators.parameters(), lr=hp.lr, betas=betas)]

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        opts = self.optimizers()
        opt_g = opts[0] if isinstance(opts, list) else opts
        warp = hp.warp_strength if hp.warp_off_step is None or self.iterations < hp.warp_off_step else 0.0
        adversarial = self.discriminators is not None and self.iterations >= hp.adversarial_step
        weights = {k: hp[k] for k in ("l1_weight", "mse_weight", "ssim_weight", "eye_multiplier", "mouth_multiplier",
                                      "eyes_mouth_weight")}
        losses: dict[str, Tensor] = {}
        faces: dict[str, tuple[Tensor, Tensor]] = {}
        with self.toggled_optimizer(opt_g):
            total = 0.0
            inputs, warped = {}, {}
            for x in SIDES:
                real, mask, parts = batch[f"image_{x}"], batch[f"mask_{x}"], batch[f"parts_{x}"]
                if hp.align:
                    real, (mask, parts), _ = self.to_template(batch[f"landmarks_{x}"], real, mask, parts)
                inputs[x] = real, mask, parts
                warped[x] = random_warp(real, warp, hp.warp_grid)[0] if warp > 0 else real
            decoded = self.decode_sides(warped)
            for x in SIDES:
                (real, mask, parts), (face, pred_mask) = inputs[x], decoded[x]  # (N, 3, S, S), (N, 1, S, S) | None
                terms = reconstruction_terms(hp.loss, face, real, mask, parts, **weights)
                if pred_mask is not None:
                    mask_error = (pred_mask - mask).abs() if hp.loss == "l1_ssim" else (pred_mask - mask) ** 2
                    terms["loss_mask"] = hp.mask_weight * mask_error.mean()
                if adversarial:
                    terms["loss_G"] = hp.adversarial_weight * self.criterion_gan(self.discriminators[x](face), True)
                losses.update({f"{k}_{x}": v for k, v in terms.items()})
                losses[f"loss_{x}"] = sum(terms.values())
                faces[x] = real, face.detach()  # the discriminator compares in the same (aligned) frame
                total = total + losses[f"loss_{x}"]
            opt_g.zero_grad()
            self.manual_backward(total)
            if hp.grad_clip > 0:
                self.clip_gradients(opt_g, gradient_clip_val=hp.grad_clip, gradient_clip_algorithm="norm")
            self._step_with_lr_dropout(opt_g)

        if adversarial:
            opt_d = opts[1]
            with self.toggled_optimizer(opt_d):
                loss_d = 0.0
                for x in SIDES:
                    d = self.discriminators[x]
                    real, fake = faces[x]
                    losses[f"loss_D_{x}"] = 0.5 * (self.criterion_gan(d(real), True)
                                                   + self.criterion_gan(d(fake), False))
                    loss_d = loss_d + losses[f"loss_D_{x}"]
                opt_d.zero_grad()
                self.manual_backward(loss_d)
                opt_d.step()

        self.iterations += 1
        n = batch["image_A"].shape[0]
        self.log_losses(losses, losses["loss_A"] + losses["loss_B"], n)

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        """The base metrics plus ``val/reconstruction_l1``: held-out faces through their own decoder (no warp),
        mean absolute error inside the face mask; what ``hparams_search=deepfakes_optuna`` minimises."""
        metrics = super().validation_step(batch, batch_idx)
        errors = []
        for x in SIDES:
            real, mask = batch[f"image_{x}"], batch[f"mask_{x}"]
            if self.hparams.align:
                real, (mask,), _ = self.to_template(batch[f"landmarks_{x}"], real, mask)
            face, _ = self.decode(real, x)
            errors.append(((face - real).abs().mean(1, keepdim=True) * mask).sum() / mask.sum().clamp_min(1.0))
        metrics["val/reconstruction_l1"] = torch.stack(errors).mean()
        self.log("val/reconstruction_l1", metrics["val/reconstruction_l1"], batch_size=batch["image_A"].shape[0])
        return metrics

    def _step_with_lr_dropout(self, opt) -> None:
        """``opt.step()``, keeping each weight's update with probability ``lr_dropout`` once the schedule says so
        (DeepFaceLab's learning-rate dropout: Adam's moments still see every gradient)."""
        keep = self.hparams.lr_dropout
        if keep >= 1 or self.iterations < self.hparams.lr_dropout_step:
            opt.step()
            return
        params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        before = [p.detach().clone() for p in params]
        opt.step()
        with torch.no_grad():
            for p, old in zip(params, before):
                p.copy_(old + (p - old) * torch.bernoulli(torch.full_like(p, keep)))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["deepfakes_iterations"] = self.iterations

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.iterations = checkpoint.get("deepfakes_iterations", 0)
