"""pix2pix landmark-to-face (Isola et al. 2017; Face2Face-style reenactment), with pix2pixHD options.

One conditional GAN per identity draws that identity from a sketch of 68 landmarks. To swap, the target's
landmarks keep their pose and expression but are moved onto the source identity's face shape (its mean
landmarks), then the source identity's generator draws them: the output has the source's jaw, eyes and mouth
proportions, not the target's jaw on the source's skin.

Code names -> paper names (per identity X in A, B):
    netG_X: G, U-Net (or ResNet "global") generator, sketch -> face
    netD_X: D, conditional PatchGAN on (sketch, face); with num_D > 1 the multi-scale D of pix2pixHD
    loss_G_GAN_X: L_cGAN for G        loss_G_L1_X: lambda_L1 * ||y - G(x)||_1
    loss_G_feat_X: pix2pixHD feature matching, lambda_feat * sum_i ||D_i(x, y) - D_i(x, G(x))||_1
    loss_D_real_X, loss_D_fake_X: D's losses on real and generated pairs (halved)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from faceswaplab.faces.masks import face_hull_mask
from faceswaplab.faces.sketch import draw_landmark_sketch, num_channels
from faceswaplab.faces.template import INNER
from faceswaplab.losses import GANLoss, feature_matching_loss
from faceswaplab.methods.base import FaceSwapMethod, direction_sides
from faceswaplab.nets import MultiscaleDiscriminator, ResnetGenerator, UnetGenerator, init_weights

SIDES = ("A", "B")


def fit_similarity(src: Tensor, dst: Tensor) -> Tensor:
    """Least-squares similarity transforms (B, 2, 3) mapping points src (B, K, 2) onto dst (B, K, 2)."""
    mu_s, mu_d = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    s, d = src - mu_s, dst - mu_d
    # Similarity as a complex multiplication z -> (a + ib) z: least squares in closed form.
    denom = (s**2).sum((1, 2)).clamp_min(1e-8)
    a = (s * d).sum((1, 2)) / denom
    b = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(1) / denom
    rot = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)  # (B, 2, 2)
    shift = mu_d[:, 0] - (rot @ mu_s[:, 0, :, None])[..., 0]
    return torch.cat([rot, shift[..., None]], -1)


def apply_similarity(m: Tensor, pts: Tensor) -> Tensor:
    """Apply transforms (B, 2, 3) to points (B, K, 2)."""
    return pts @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]


def retarget_landmarks(target: Tensor, target_mean: Tensor, source_mean: Tensor) -> Tensor:
    """Move target landmarks (B, 68, 2) onto another face shape, keeping pose and expression.

    The target is written as its identity's mean shape (68, 2), placed by a similarity fit on the inner points,
    plus a residual (pose beyond similarity, expression); the source's mean shape, placed the same way, takes the
    mean's place.
    """
    B = target.shape[0]
    tm, sm = target_mean.expand(B, -1, -1), source_mean.expand(B, -1, -1)
    m = fit_similarity(tm[:, INNER], target[:, INNER])
    residual = target - apply_similarity(m, tm)
    return apply_similarity(m, sm) + residual


class Pix2Pix(FaceSwapMethod):
    """Two conditional GANs (one per identity) from landmark sketches to faces.

    Reads ``image_X`` and ``landmarks_X`` for X in A, B (the sketch is drawn from the landmarks on the fly).
    ``swap(target, target_landmarks=..., direction="AtoB")`` draws identity B with the pose and expression of the
    target's landmarks (required), moved onto B's face shape; with ``paste`` the drawn face is feathered onto the
    target through its face mask. ``source`` is ignored.
    """

    identity_specific = True
    tiny = {"gen_width": 8, "disc_width": 8, "disc_layers": 2, "lr": 1e-3}
    fit_loss = "train/loss_G_L1_A"

    def __init__(
        self,
        image_size: int,
        lambda_L1: float,
        lambda_feat: float,
        generator: str = "unet",
        gen_width: int = 64,
        gen_blocks: int = 9,
        disc_width: int = 64,
        disc_layers: int = 3,
        num_D: int = 1,
        norm: str = "batch",
        gan_mode: str = "vanilla",
        sketch_channels: str = "single",
        sketch_thickness: float = 1.0,
        dropout: float = 0.5,
        paste: bool = True,
        paste_blur: float = 2.0,
        lr: float = 2e-4,
        beta1: float = 0.5,
        shape_momentum: float = 0.01,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        in_ch = num_channels(sketch_channels)
        for x in SIDES:
            if generator == "unet":
                g = UnetGenerator(in_ch, 3, int(math.log2(image_size)), gen_width, norm, dropout)
            elif generator == "resnet":
                g = ResnetGenerator(in_ch, 3, gen_width, gen_blocks, norm, dropout=0.0)
            else:
                raise ValueError(f"unknown generator {generator!r}: expected 'unet' or 'resnet'")
            setattr(self, f"netG_{x}", init_weights(g))
            setattr(self, f"netD_{x}", init_weights(MultiscaleDiscriminator(in_ch + 3, disc_width, disc_layers, norm, num_D)))
            # Each identity's mean landmarks, learnt from its training batches (crop pixels at image_size).
            self.register_buffer(f"mean_landmarks_{x}", torch.zeros(68, 2))
            self.register_buffer(f"shape_seen_{x}", torch.zeros((), dtype=torch.bool))
        self.criterion_gan = GANLoss(gan_mode)

    def sketch(self, landmarks: Tensor) -> Tensor:
        """Landmarks (B, 68, 2) -> the generator's input (B, C, S, S) in [-1, 1]."""
        hp = self.hparams
        return draw_landmark_sketch(landmarks, hp.image_size, hp.sketch_thickness, hp.sketch_channels)

    def draw(self, landmarks: Tensor, side: str) -> Tensor:
        """Draw identity `side` with these landmarks (B, 68, 2) -> (B, 3, S, S)."""
        return getattr(self, f"netG_{side}")(self.sketch(landmarks))

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        if target_landmarks is None:
            raise ValueError("Pix2Pix.swap needs target_landmarks (B, 68, 2), the target's pose and expression, in "
                             "crop pixels (prepare's index.jsonl has them; swap_media detects them in whole images)")
        t, s = direction_sides(direction or "AtoB")
        moved = retarget_landmarks(target_landmarks, getattr(self, f"mean_landmarks_{t}"), getattr(self, f"mean_landmarks_{s}"))
        face = self.draw(moved, s)
        if not self.hparams.paste:
            return face
        mask = torch.maximum(face_hull_mask(moved, target.shape[-2:], blur=self.hparams.paste_blur),
                             face_hull_mask(target_landmarks, target.shape[-2:], blur=self.hparams.paste_blur))
        return mask * face + (1 - mask) * target

    @torch.no_grad()
    def _update_mean_shape(self, side: str, landmarks: Tensor) -> None:
        mean, seen = getattr(self, f"mean_landmarks_{side}"), getattr(self, f"shape_seen_{side}")
        batch_mean = landmarks.mean(0)
        if not seen:
            mean.copy_(batch_mean)
            seen.fill_(True)
        else:
            mean.lerp_(batch_mean, self.hparams.shape_momentum)

    def configure_optimizers(self):
        hp = self.hparams
        betas = (hp.beta1, 0.999)
        opt_g = torch.optim.Adam([*self.netG_A.parameters(), *self.netG_B.parameters()], lr=hp.lr, betas=betas)
        opt_d = torch.optim.Adam([*self.netD_A.parameters(), *self.netD_B.parameters()], lr=hp.lr, betas=betas)
        return [opt_g, opt_d]

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        losses: dict[str, Tensor] = {}
        pairs = {}
        for x in SIDES:
            self._update_mean_shape(x, batch[f"landmarks_{x}"])
            sketch = self.sketch(batch[f"landmarks_{x}"])  # (N, C, S, S)
            pairs[x] = (sketch, batch[f"image_{x}"])

        with self.toggled_optimizer(opt_g):
            total = 0.0
            fakes = {}
            for x in SIDES:
                sketch, real = pairs[x]
                fake = getattr(self, f"netG_{x}")(sketch)
                netD = getattr(self, f"netD_{x}")
                pred_fake = netD(torch.cat([sketch, fake], 1), features=hp.lambda_feat > 0)
                losses[f"loss_G_GAN_{x}"] = self.criterion_gan(pred_fake, True, for_discriminator=False)
                losses[f"loss_G_L1_{x}"] = F.l1_loss(fake, real) * hp.lambda_L1
                loss_x = losses[f"loss_G_GAN_{x}"] + losses[f"loss_G_L1_{x}"]
                if hp.lambda_feat > 0:
                    with torch.no_grad():
                        pred_real = netD(torch.cat([sketch, real], 1), features=True)
                    losses[f"loss_G_feat_{x}"] = feature_matching_loss(pred_fake, pred_real) * hp.lambda_feat
                    loss_x = loss_x + losses[f"loss_G_feat_{x}"]
                fakes[x] = fake.detach()
                total = total + loss_x
            opt_g.zero_grad()
            self.manual_backward(total)
            opt_g.step()

        with self.toggled_optimizer(opt_d):
            total_d = 0.0
            for x in SIDES:
                sketch, real = pairs[x]
                netD = getattr(self, f"netD_{x}")
                losses[f"loss_D_real_{x}"] = 0.5 * self.criterion_gan(netD(torch.cat([sketch, real], 1)), True)
                losses[f"loss_D_fake_{x}"] = 0.5 * self.criterion_gan(netD(torch.cat([sketch, fakes[x]], 1)), False)
                total_d = total_d + losses[f"loss_D_real_{x}"] + losses[f"loss_D_fake_{x}"]
            opt_d.zero_grad()
            self.manual_backward(total_d)
            opt_d.step()

        n = batch["image_A"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=n)
        self.log("train/loss", (losses["loss_G_L1_A"] + losses["loss_G_L1_B"]).detach(), prog_bar=True, batch_size=n)
