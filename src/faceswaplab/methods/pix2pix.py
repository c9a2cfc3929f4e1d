"""pix2pix landmark-to-face (Isola et al. 2017; Face2Face-style reenactment), with pix2pixHD options.

One conditional GAN per identity draws that identity from a sketch of 68 landmarks. To swap, the target's
landmarks keep their pose and expression but are moved onto the source identity's face shape (its mean
landmarks), then the source identity's generator draws them: the output has the source's jaw, eyes and mouth
proportions, not the target's jaw on the source's skin.

pix2pixHD (Wang et al. 2018) switches: ``generator="global"`` (G1, four downsamplings) or ``"local"`` (G2 around
G1, with G1 held fixed for the first ``niter_fix_global`` epochs, optionally loaded from a ``global`` run at half the
resolution with ``pretrained_global``), ``num_D`` multi-scale discriminators,
``lambda_feat`` discriminator feature matching and ``lambda_vgg`` the perceptual loss.

Code names -> paper names (per identity X in A, B):
    netG_X: G, U-Net (or ResNet / pix2pixHD global or local) generator, sketch -> face
    netD_X: D, conditional PatchGAN on (sketch, face); with num_D > 1 the multi-scale D of pix2pixHD
    loss_G_GAN_X: L_cGAN for G (summed over the scales)    loss_G_L1_X: lambda_L1 * ||y - G(x)||_1
    loss_G_feat_X: pix2pixHD's L_FM, lambda_feat * sum_k sum_i w_i ||D_k^(i)(x, y) - D_k^(i)(x, G(x))||_1
    loss_G_VGG_X: pix2pixHD's perceptual loss, lambda_vgg * sum_i w_i ||F^(i)(y) - F^(i)(G(x))||_1
    loss_D_real_X, loss_D_fake_X: D's losses on real and generated pairs (halved)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from faceswaplab.faces.masks import face_hull_mask
from faceswaplab.faces.sketch import draw_landmark_sketch, num_channels
from faceswaplab.faces.template import INNER
from faceswaplab.losses import GANLoss, feature_matching_loss
from faceswaplab.methods.base import FaceSwapMethod, direction_sides
from faceswaplab.methods.cyclegan import linear_decay
from faceswaplab.nets import LocalEnhancer, MultiscaleDiscriminator, ResnetGenerator, UnetGenerator, init_weights
from faceswaplab.nets.init import eval_mode, sampling_mode, seeded

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


@torch.no_grad()
def update_mean_shape(module, mean: Tensor, seen: Tensor, landmarks: Tensor, momentum: float) -> None:
    """Move the running mean face shape `mean` (68, 2) toward this batch's (B, 68, 2) `landmarks` (set it on the
    first batch, `seen` a bool buffer); under DDP the batch means of every rank are averaged first, so every rank
    keeps the same shape."""
    batch_mean = landmarks.mean(0)  # (68, 2)
    if module._trainer is not None and module.trainer.world_size > 1:
        batch_mean = module.all_gather(batch_mean).mean(0)  # (world, 68, 2) -> (68, 2)
    if not seen:
        mean.copy_(batch_mean)
        seen.fill_(True)
    else:
        mean.lerp_(batch_mean, momentum)


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

    Inference follows the paper (section 3.1, and the reference test script without ``--eval``): the generator
    runs as in training, dropout on and batch norm from the image's own statistics (each image alone, as the
    reference tests with batch 1), so a swap is a sample. ``swap_seed`` fixes the dropout noise of every image
    (a swap then depends neither on the call nor on the rest of the batch; None: fresh noise every time);
    ``eval_mode=True`` runs the generator deterministically instead, with running statistics and no dropout
    (reported to give blurrier faces).

    Training follows the reference: the discriminator is updated before the generator on each batch, the
    learning rate is constant for ``n_epochs`` and decays linearly to zero over ``n_epochs_decay`` (default:
    halves of the trainer's ``max_epochs``, as the reference's 100 + 100).
    """

    identity_specific = True
    tiny = {"gen_width": 8, "disc_width": 8, "disc_layers": 2, "lr": 1e-3}
    fit_loss = "train/loss_G_L1_A"

    def __init__(
        self,
        image_size: int,
        lambda_L1: float = 100.0,
        lambda_feat: float = 0.0,
        lambda_vgg: float = 0.0,
        perceptual: dict | None = None,
        generator: str = "unet",
        gen_width: int = 64,
        gen_blocks: int = 9,
        n_downsample_global: int = 4,
        n_blocks_local: int = 3,
        niter_fix_global: int = 0,
        pretrained_global: str | None = None,
        disc_width: int = 64,
        disc_layers: int = 3,
        disc_padding: int = 1,
        num_D: int = 1,
        norm: str = "batch",
        gan_mode: str = "vanilla",
        sketch_channels: str = "single",
        sketch_thickness: float = 1.0,
        dropout: float = 0.5,
        eval_mode: bool = False,
        swap_seed: int | None = 0,
        paste: bool = True,
        paste_blur: float = 2.0,
        lr: float = 2e-4,
        beta1: float = 0.5,
        n_epochs: int | None = None,
        n_epochs_decay: int | None = None,
        shape_momentum: float = 0.01,
    ):
        super().__init__()
        if perceptual is not None:  # a plain dict in the checkpoint, whatever Hydra passed
            perceptual = OmegaConf.to_container(perceptual) if isinstance(perceptual, DictConfig) else dict(perceptual)
        self.save_hyperparameters()
        self.automatic_optimization = False
        in_ch = num_channels(sketch_channels)
        for x in SIDES:
            setattr(self, f"netG_{x}", init_weights(self._generator(in_ch)))
            netD = MultiscaleDiscriminator(in_ch + 3, disc_width, disc_layers, norm, num_D, disc_padding)
            setattr(self, f"netD_{x}", init_weights(netD))
            # Each identity's mean landmarks, learnt from its training batches (crop pixels at image_size).
            self.register_buffer(f"mean_landmarks_{x}", torch.zeros(68, 2))
            self.register_buffer(f"shape_seen_{x}", torch.zeros((), dtype=torch.bool))
        self.criterion_gan = GANLoss(gan_mode)
        # Built when training starts and kept out of the state dict: swapping never needs its weights.
        self.__dict__["criterion_vgg"] = None

    def _generator(self, in_ch: int) -> torch.nn.Module:
        hp = self.hparams
        if hp.generator == "unet":
            return UnetGenerator(in_ch, 3, int(math.log2(hp.image_size)), hp.gen_width, hp.norm, hp.dropout)
        if hp.generator in ("resnet", "global"):  # CycleGAN's (2 downsamplings) or pix2pixHD's G1
            downs = 2 if hp.generator == "resnet" else hp.n_downsample_global
            return ResnetGenerator(in_ch, 3, hp.gen_width, hp.gen_blocks, hp.norm, hp.dropout, n_downsampling=downs)
        if hp.generator == "local":
            return LocalEnhancer(in_ch, 3, hp.gen_width, hp.n_downsample_global, hp.gen_blocks, hp.n_blocks_local,
                                 hp.norm)
        raise ValueError(f"unknown generator {hp.generator!r}: expected 'unet', 'resnet', 'global' or 'local'")

    def sketch(self, landmarks: Tensor) -> Tensor:
        """Landmarks (B, 68, 2) -> the generator's input (B, C, S, S) in [-1, 1]."""
        hp = self.hparams
        return draw_landmark_sketch(landmarks, hp.image_size, hp.sketch_thickness, hp.sketch_channels)

    def draw(self, landmarks: Tensor, side: str) -> Tensor:
        """Draw identity `side` with these landmarks (B, 68, 2) -> (B, 3, S, S), in the inference mode chosen."""
        g, x = getattr(self, f"netG_{side}"), self.sketch(landmarks)
        if self.hparams.eval_mode:
            with eval_mode(g):
                return g(x)
        with sampling_mode(g):
            out = []
            for xi in x:  # each image alone: its own batch statistics and its own noise, whatever the batch
                with seeded(self.hparams.swap_seed, x.device):
                    out.append(g(xi[None]))
            return torch.cat(out)

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

    def _update_mean_shape(self, side: str, landmarks: Tensor) -> None:
        update_mean_shape(self, getattr(self, f"mean_landmarks_{side}"), getattr(self, f"shape_seen_{side}"),
                          landmarks, self.hparams.shape_momentum)

    def setup(self, stage: str) -> None:
        # Before a resumed checkpoint is restored (which then wins), after the model is built.
        if stage == "fit" and self.hparams.generator == "local" and self.hparams.pretrained_global:
            self.load_global(self.hparams.pretrained_global)

    def load_global(self, path: str) -> None:
        """Load G1 from a ``generator=global`` run (checkpoint or run directory) at half this resolution, twice
        this ``gen_width``, as pix2pixHD starts its local enhancer from the 512p model (``--load_pretrain``)."""
        from pathlib import Path

        file = Path(path) / "checkpoints" / "last.ckpt" if Path(path).is_dir() else Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"pretrained_global: no checkpoint at {file}")
        state = torch.load(file, map_location="cpu", weights_only=False)["state_dict"]
        for x in SIDES:
            net = getattr(self, f"netG_{x}").global_net
            prefix = f"netG_{x}.model."
            sub = {k[len(prefix):]: v for k, v in state.items()
                   if k.startswith(prefix) and int(k[len(prefix):].split(".")[0]) < len(net)}
            try:
                net.load_state_dict(sub)
            except RuntimeError as e:
                detail = " ".join(str(e).split())[:300]
                raise ValueError(f"pretrained_global {file}: not a generator=global run with gen_width "
                                 f"{2 * self.hparams.gen_width}, no dropout and this net's depth ({detail})") from None

    def on_fit_start(self) -> None:
        # Before the first batch, so missing perceptual weights stop the run at once with the file's name.
        if self.hparams.lambda_vgg > 0 and self.criterion_vgg is None:
            from hydra.utils import get_class

            spec = dict(self.hparams.perceptual or {"_target_": "faceswaplab.losses.VGGLoss"})
            loss = get_class(spec.pop("_target_"))(**spec)  # not instantiate(): its errors stay unwrapped
            self.__dict__["criterion_vgg"] = loss.to(self.device)

    def configure_optimizers(self):
        hp = self.hparams
        kw = dict(lr=hp.lr, betas=(hp.beta1, 0.999))
        opt_g = self.adam([*self.netG_A.parameters(), *self.netG_B.parameters()], **kw)
        opt_d = self.adam([*self.netD_A.parameters(), *self.netD_B.parameters()], **kw)
        return [opt_g, opt_d], linear_decay(self, [opt_g, opt_d], hp.n_epochs, hp.n_epochs_decay)

    def on_train_epoch_end(self) -> None:
        for sched in self.lr_schedulers():
            sched.step()

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        losses: dict[str, Tensor] = {}
        # pix2pixHD trains only the local enhancer while G1 stays fixed: G1 gets no gradient, so Adam skips it.
        warmup = hp.generator == "local" and self.current_epoch < hp.niter_fix_global
        sketches, reals, fakes = {}, {}, {}
        for x in SIDES:
            self._update_mean_shape(x, batch[f"landmarks_{x}"])
            g = getattr(self, f"netG_{x}")
            if hp.generator == "local":
                g.global_net.requires_grad_(not warmup)
            sketches[x], reals[x] = self.sketch(batch[f"landmarks_{x}"]), batch[f"image_{x}"]  # (N, C, S, S)
            fakes[x] = g(sketches[x])

        # The discriminator first, on this batch's fakes, as the reference does.
        with self.toggled_optimizer(opt_d):
            total_d = 0.0
            for x in SIDES:
                netD = getattr(self, f"netD_{x}")
                losses[f"loss_D_real_{x}"] = 0.5 * self.criterion_gan(netD(torch.cat([sketches[x], reals[x]], 1)), True)
                losses[f"loss_D_fake_{x}"] = 0.5 * self.criterion_gan(
                    netD(torch.cat([sketches[x], fakes[x].detach()], 1)), False)
                total_d = total_d + losses[f"loss_D_real_{x}"] + losses[f"loss_D_fake_{x}"]
            opt_d.zero_grad()
            self.manual_backward(total_d)
            opt_d.step()

        # Then the generator against the updated discriminator.
        with self.toggled_optimizer(opt_g):
            total = 0.0
            for x in SIDES:
                sketch, real, fake = sketches[x], reals[x], fakes[x]
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
                if hp.lambda_vgg > 0:
                    losses[f"loss_G_VGG_{x}"] = self.criterion_vgg(fake, real) * hp.lambda_vgg
                    loss_x = loss_x + losses[f"loss_G_VGG_{x}"]
                total = total + loss_x
            opt_g.zero_grad()
            self.manual_backward(total)
            opt_g.step()

        n = batch["image_A"].shape[0]
        self.log_losses(losses, losses["loss_G_L1_A"] + losses["loss_G_L1_B"], n)
