"""The DeepFakes autoencoder: one shared encoder, one decoder per identity; swap A -> B = decoder_B(encoder(a)).

Each step reconstructs both identities from randomly warped copies of their faces, so the encoder must learn
pose and expression rather than copy pixels; the decoders learn to draw their own identity from that code.
With ``align`` (the default) every face is first fitted to the canonical template by a similarity on its
landmarks, as faceswap trains on aligned faces: head roll, scale and shift then no longer move the eyes and mouth
around the crop, and the autoencoder learns features much sooner. The swap is warped back onto the target.
Loss names:
    loss_l1_X    masked L1 between decoder_X(encoder(warp(x))) and x inside the face mask, eyes and mouth weighted
    loss_ssim_X  1 - SSIM of the same pair (the DSSIM term of the faceswap trainers)
    loss_mask_X  L1 between the decoder's mask and the face mask (when the decoder learns a mask)
    loss_G_X     optional adversarial term against a PatchGAN of identity X (LSGAN); loss_D_X its discriminator
    loss_X       the sum for identity X
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from faceswaplab.data.augment import apply_affine, random_warp
from faceswaplab.faces.alignment import alignment_transform_batch, invert_transform_batch
from faceswaplab.losses import GANLoss, masked_l1, ssim_loss
from faceswaplab.methods.base import FaceSwapMethod, direction_sides
from faceswaplab.nets import Decoder, Encoder, PatchDiscriminator, init_weights

SIDES = ("A", "B")


class DeepFakes(FaceSwapMethod):
    """Shared encoder + decoder_A + decoder_B (faceswap's "original" model at 64 px, scalable to 128 and 256).

    Reads ``image_X``, ``mask_X`` and ``parts_X`` (eye and mouth regions) for X in A, B, and ``landmarks_X``
    with ``align``. ``swap(target, direction="AtoB")`` decodes an A face with B's decoder and, when the decoder
    learns a mask, pastes the result onto the target through that mask, so the target's background is kept.
    ``source`` is ignored. With ``align``, the target's landmarks place the face in the template frame; without
    them the crop is taken as already aligned.
    """

    identity_specific = True
    tiny = {"enc_width": 8, "latent": 32, "dense_channels": 32, "code_channels": 16, "dec_width": 16, "lr": 1e-3}
    fit_loss = "train/loss_A"

    def __init__(
        self,
        image_size: int,
        l1_weight: float,
        ssim_weight: float,
        eye_weight: float,
        mouth_weight: float,
        mask_weight: float,
        adversarial_weight: float,
        warp_strength: float = 0.04,
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
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.encoder = Encoder(image_size, enc_width, latent, dense_channels, code_channels)
        self.decoders = torch.nn.ModuleDict(
            {x: Decoder(image_size, dec_width, code_channels, mask=learn_mask) for x in SIDES}
        )
        self.discriminators = None
        if adversarial_weight > 0:
            self.discriminators = torch.nn.ModuleDict({x: init_weights(PatchDiscriminator(3, disc_width)) for x in SIDES})
            self.criterion_gan = GANLoss("lsgan")

    def decode(self, images: Tensor, side: str) -> tuple[Tensor, Tensor | None]:
        """(N, 3, S, S) -> decoder_side(encoder(images)): the face (N, 3, S, S) and its mask (N, 1, S, S) or None."""
        out = self.decoders[side](self.encoder(images))
        return out if self.hparams.learn_mask else (out, None)

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
        opt_g = torch.optim.Adam([*self.encoder.parameters(), *self.decoders.parameters()], lr=hp.lr, betas=betas)
        if self.discriminators is None:
            return opt_g
        return [opt_g, torch.optim.Adam(self.discriminators.parameters(), lr=hp.lr, betas=betas)]

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        opts = self.optimizers()
        opt_g = opts[0] if isinstance(opts, list) else opts
        losses: dict[str, Tensor] = {}
        faces: dict[str, tuple[Tensor, Tensor]] = {}
        with self.toggled_optimizer(opt_g):
            total = 0.0
            for x in SIDES:
                real, mask, parts = batch[f"image_{x}"], batch[f"mask_{x}"], batch[f"parts_{x}"]
                if hp.align:
                    real, (mask, parts), _ = self.to_template(batch[f"landmarks_{x}"], real, mask, parts)
                warped, _ = random_warp(real, hp.warp_strength, hp.warp_grid)
                face, pred_mask = self.decode(warped, x)  # (N, 3, S, S), (N, 1, S, S) | None
                weight = 1 + (hp.eye_weight - 1) * parts[:, :1] + (hp.mouth_weight - 1) * parts[:, 1:2]
                losses[f"loss_l1_{x}"] = hp.l1_weight * masked_l1(face, real, mask, weight)
                # SSIM on the face only: the background is not the decoder's job.
                losses[f"loss_ssim_{x}"] = hp.ssim_weight * ssim_loss(face * mask, real * mask)
                loss_x = losses[f"loss_l1_{x}"] + losses[f"loss_ssim_{x}"]
                if pred_mask is not None:
                    losses[f"loss_mask_{x}"] = hp.mask_weight * F.l1_loss(pred_mask, mask)
                    loss_x = loss_x + losses[f"loss_mask_{x}"]
                if self.discriminators is not None:
                    losses[f"loss_G_{x}"] = hp.adversarial_weight * self.criterion_gan(self.discriminators[x](face), True)
                    loss_x = loss_x + losses[f"loss_G_{x}"]
                losses[f"loss_{x}"] = loss_x
                faces[x] = real, face.detach()  # the discriminator compares in the same (aligned) frame
                total = total + loss_x
            opt_g.zero_grad()
            self.manual_backward(total)
            opt_g.step()

        if self.discriminators is not None:
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

        n = batch["image_A"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=n)
        self.log("train/loss", (losses["loss_A"] + losses["loss_B"]).detach(), prog_bar=True, batch_size=n)
