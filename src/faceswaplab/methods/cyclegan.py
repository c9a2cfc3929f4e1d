"""CycleGAN (Zhu et al. 2017): unpaired translation between the faces of identity A and identity B.

Code names -> paper names:
    netG_A: G, maps A -> B              netG_B: F, maps B -> A
    netD_A: D_B, tells real B from G(A)  netD_B: D_A, tells real A from F(B)
    loss_G_A: L_GAN(G, D_B)              loss_G_B: L_GAN(F, D_A)
    loss_cycle_A: ||F(G(a)) - a||_1 * lambda_A      loss_cycle_B: ||G(F(b)) - b||_1 * lambda_B
    loss_idt_A: ||G(b) - b||_1 * lambda_B * lambda_identity    (identity mapping loss, section 5.2)
    loss_idt_B: ||F(a) - a||_1 * lambda_A * lambda_identity
    loss_D_A, loss_D_B: the discriminators' LSGAN losses, halved, on a history of 50 generated images.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from faceswaplab.losses import GANLoss
from faceswaplab.methods.base import FaceSwapMethod, direction_sides
from faceswaplab.nets import PatchDiscriminator, ResnetGenerator, init_weights


class ImagePool:
    """A history of generated images (Shrivastava et al. 2017): the discriminator sees old fakes half the time.

    Its random choices come from its own generator, and `state_dict` holds the images and that generator, so a
    resumed run draws exactly what an uninterrupted one would.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[Tensor] = []
        self.rng = torch.Generator().manual_seed(seed)

    def query(self, images: Tensor) -> Tensor:
        """Return a batch the same shape as `images` (N, C, H, W), mixing in stored images and storing new ones."""
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=self.rng) < 0.5:
                i = int(torch.randint(self.size, (), generator=self.rng))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"images": [t.cpu() for t in self.images], "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.images = [t.to(device) for t in state["images"]]
        self.rng.set_state(state["rng"].cpu())  # a checkpoint loaded onto a GPU maps this CPU state there too


def linear_decay(method: L.LightningModule, optimizers: list, n_epochs: int | None,
                 n_epochs_decay: int | None) -> list:
    """The reference schedule of CycleGAN and pix2pix: constant for `n_epochs`, then linear to zero over
    `n_epochs_decay` (stepped once per epoch). None for both: the trainer's ``max_epochs`` split in halves, as
    the papers' 100 + 100 of 200 epochs (a constant rate when the trainer counts steps instead of epochs).
    """
    if n_epochs is None and n_epochs_decay is None:
        total = method.trainer.max_epochs if method._trainer is not None else None
        if total is None or total < 0:
            n_epochs, n_epochs_decay = 10**9, 1
        else:
            n_epochs_decay = total // 2
            n_epochs = total - n_epochs_decay
    elif n_epochs is None or n_epochs_decay is None:
        raise ValueError("set both n_epochs and n_epochs_decay, or neither (halves of trainer.max_epochs)")

    def rule(epoch: int) -> float:
        return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))

    return [torch.optim.lr_scheduler.LambdaLR(o, rule) for o in optimizers]


def resize_crop_flip(images: Tensor, load_ratio: float) -> Tensor:
    """The reference's ``resize_and_crop`` + flip augmentation on a batch (N, C, H, W): each image is resized to
    `load_ratio` times its size (286/256 in the paper), cropped back at a random place and mirrored with
    probability 1/2 (torch's global generator, which training reseeds every batch)."""
    n, _, h, w = images.shape
    big_h, big_w = round(h * load_ratio), round(w * load_ratio)
    big = F.interpolate(images, size=(big_h, big_w), mode="bicubic", align_corners=False).clamp(-1, 1)
    ys = torch.randint(0, big_h - h + 1, (n,)).tolist()
    xs = torch.randint(0, big_w - w + 1, (n,)).tolist()
    crops = torch.stack([big[i, :, y:y + h, x:x + w] for i, (y, x) in enumerate(zip(ys, xs))])
    flip = (torch.rand(n) < 0.5).to(images.device).view(n, 1, 1, 1)
    return torch.where(flip, crops.flip(-1), crops)


class CycleGAN(FaceSwapMethod):
    """Two ResNet generators and two 70x70 PatchGANs trained with LSGAN, cycle and identity losses.

    Reads ``image_A`` and ``image_B`` (unpaired) from the batch. ``swap(target, direction="AtoB")`` returns
    ``netG_A(target)``: the target, an A face, redrawn as B; ``"BtoA"`` uses ``netG_B``. ``source`` is ignored:
    the identity is the one the generator was trained on.

    ``augment`` adds the reference's ``resize_and_crop`` + flip to each training batch (resize by
    ``load_ratio``, random crop back, random mirror). The learning rate is constant for ``n_epochs`` and decays
    linearly to zero over ``n_epochs_decay`` (default: halves of the trainer's ``max_epochs``, section 7.1).
    ``image_size`` only records the crop size (the nets are fully convolutional; None swaps crops of any size).
    """

    identity_specific = True
    tiny = {"gen_width": 8, "gen_blocks": 2, "disc_width": 8}
    fit_loss = "train/loss_cycle_A"

    def __init__(
        self,
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float = 0.5,
        gen_width: int = 64,
        gen_blocks: int = 9,
        disc_width: int = 64,
        disc_layers: int = 3,
        norm: str = "instance",
        gan_mode: str = "lsgan",
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        n_epochs: int | None = None,
        n_epochs_decay: int | None = None,
        init_gain: float = 0.02,
        augment: bool = False,
        load_ratio: float = 286 / 256,
        image_size: int | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()  # image_size None: crops of any size are swapped as they are
        self.automatic_optimization = False
        self.netG_A = init_weights(ResnetGenerator(3, 3, gen_width, gen_blocks, norm), gain=init_gain)
        self.netG_B = init_weights(ResnetGenerator(3, 3, gen_width, gen_blocks, norm), gain=init_gain)
        self.netD_A = init_weights(PatchDiscriminator(3, disc_width, disc_layers, norm), gain=init_gain)
        self.netD_B = init_weights(PatchDiscriminator(3, disc_width, disc_layers, norm), gain=init_gain)
        self.criterion_gan = GANLoss(gan_mode)
        self.fake_A_pool = ImagePool(pool_size, seed=1)
        self.fake_B_pool = ImagePool(pool_size, seed=2)

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        t, _ = direction_sides(direction or "AtoB")
        return self.netG_A(target) if t == "A" else self.netG_B(target)

    def both(self, net: torch.nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``net(x), net(y)``. With instance norm (or none) each sample is normalised alone, so both go through in
        one call: the same result up to float rounding, in fewer and larger kernels (faster at batch 1, on CPU and
        GPU). Batch norm's statistics would mix them, so there the two calls stay apart, as in the reference."""
        if self.hparams.norm == "batch":
            return net(x), net(y)
        out = net(torch.cat([x, y]))
        return out[: len(x)], out[len(x):]

    def configure_optimizers(self):
        hp = self.hparams
        betas = (hp.beta1, 0.999)
        opt_g = self.adam([*self.netG_A.parameters(), *self.netG_B.parameters()], lr=hp.lr, betas=betas)
        opt_d = self.adam([*self.netD_A.parameters(), *self.netD_B.parameters()], lr=hp.lr, betas=betas)
        return [opt_g, opt_d], linear_decay(self, [opt_g, opt_d], hp.n_epochs, hp.n_epochs_decay)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        real_A, real_B = batch["image_A"], batch["image_B"]  # (N, 3, H, W) each, unpaired
        if hp.augment:
            real_A, real_B = resize_crop_flip(real_A, hp.load_ratio), resize_crop_flip(real_B, hp.load_ratio)
        opt_g, opt_d = self.optimizers()

        # Generators G (netG_A) and F (netG_B); the discriminators are frozen by the toggle.
        with self.toggled_optimizer(opt_g):
            if hp.lambda_identity > 0:
                fake_B, idt_A = self.both(self.netG_A, real_A, real_B)
                fake_A, idt_B = self.both(self.netG_B, real_B, real_A)
                loss_idt_A = F.l1_loss(idt_A, real_B) * hp.lambda_B * hp.lambda_identity
                loss_idt_B = F.l1_loss(idt_B, real_A) * hp.lambda_A * hp.lambda_identity
            else:
                fake_B, fake_A = self.netG_A(real_A), self.netG_B(real_B)
                loss_idt_A = loss_idt_B = real_A.new_zeros(())
            rec_A = self.netG_B(fake_B)
            rec_B = self.netG_A(fake_A)
            loss_G_A = self.criterion_gan(self.netD_A(fake_B), True)
            loss_G_B = self.criterion_gan(self.netD_B(fake_A), True)
            loss_cycle_A = F.l1_loss(rec_A, real_A) * hp.lambda_A
            loss_cycle_B = F.l1_loss(rec_B, real_B) * hp.lambda_B
            loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
            opt_g.zero_grad()
            self.manual_backward(loss_G)
            opt_g.step()

        # Discriminators D_B (netD_A) and D_A (netD_B), on pooled fakes.
        with self.toggled_optimizer(opt_d):
            pooled_B = self.fake_B_pool.query(fake_B)
            pooled_A = self.fake_A_pool.query(fake_A)
            real_B_pred, pooled_B_pred = self.both(self.netD_A, real_B, pooled_B)
            real_A_pred, pooled_A_pred = self.both(self.netD_B, real_A, pooled_A)
            loss_D_A = 0.5 * (self.criterion_gan(real_B_pred, True) + self.criterion_gan(pooled_B_pred, False))
            loss_D_B = 0.5 * (self.criterion_gan(real_A_pred, True) + self.criterion_gan(pooled_A_pred, False))
            opt_d.zero_grad()
            self.manual_backward(loss_D_A + loss_D_B)
            opt_d.step()

        losses = dict(loss_G_A=loss_G_A, loss_G_B=loss_G_B, loss_cycle_A=loss_cycle_A, loss_cycle_B=loss_cycle_B,
                      loss_idt_A=loss_idt_A, loss_idt_B=loss_idt_B, loss_D_A=loss_D_A, loss_D_B=loss_D_B, loss_G=loss_G)
        self.log_losses(losses, loss_G, real_A.shape[0])

    def on_train_epoch_end(self) -> None:
        for sched in self.lr_schedulers():
            sched.step()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["image_pools"] = {"A": self.fake_A_pool.state_dict(), "B": self.fake_B_pool.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        pools = checkpoint.get("image_pools")
        if pools:
            self.fake_A_pool.load_state_dict(pools["A"], self.device)
            self.fake_B_pool.load_state_dict(pools["B"], self.device)
