"""SimSwap-style one-shot face swap (Chen et al., "SimSwap: An Efficient Framework For High Fidelity Face
Swapping", ACM MM 2020): any source identity onto any target, from one photo, identities unseen in training.

An encoder reads the target; identity-injection blocks (residual blocks whose AdaIN scale and shift are computed
from the source's identity vector) change its identity; a decoder draws the result. A frozen face network gives
the identity vectors and the identity loss; a multi-scale PatchGAN gives the adversarial loss and SimSwap's weak
feature matching (only the discriminators' last feature layers, which carry identity-free semantics, not the
early ones that would pull the output's texture back to the target's).

Training pairs: every image of the batch is a target; its source is another image of the same identity with
probability ``same_ratio`` (the reconstruction pairs), else an image of another identity. Pair batches (A/B,
``mode: pair``) and many-identity batches (``mode: many``) both work.

The identity network (``identity_net``): ``synthetic``, a small CNN trained on the synthetic faces of population
seed :data:`IDENTITY_EMBEDDER`\\ ``["seed"]`` (2000), which is never the benchmark's metric embedder (population 1000:
training on the metric would score a method on its own loss); ``dlib``, dlib's ResNet face descriptor ported to
torch (:mod:`faceswaplab.nets.dlib_resnet`), for real faces. The paper uses ArcFace, whose weights cannot be had here.

Code names -> paper names (section 3.4):
    loss_id:    lambda_Id * L_Id, L_Id = 1 - cos(v_S, v_R): identity vectors of the source and the result
    loss_rec:   lambda_Rec * L_Rec, ||I_R - I_T||_1 on pairs whose source and target are the same identity
    loss_G:     L_Adv for the generator (hinge, summed over the discriminator's scales)
    loss_FM:    lambda_wFM * L_wFM, weak feature matching: L1 between D's last `fm_layers` feature maps on I_R and
                I_T, weighted per layer and scale as the reference code weights pix2pixHD's feature matching
    loss_D_real, loss_D_fake: the discriminator's hinge losses;  loss_D_GP: lambda_GP * L_GP, the gradient
                penalty on images interpolated between target and result (off when lambda_GP is 0)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceswaplab.data.schema import IDENTITY, IMAGE, LANDMARKS, SIDES, key
from faceswaplab.losses import GANLoss
from faceswaplab.methods.base import FaceSwapMethod
from faceswaplab.nets import MultiscaleDiscriminator, init_weights

# The synthetic identity network's training settings (faceswaplab.metrics.embedders.train_synthetic_embedder):
# a population (seed 2000) disjoint from the benchmark's data (seed 0) and from its metric embedder's (seed 1000).
IDENTITY_EMBEDDER = dict(seed=2000, identities=100, renders=16, epochs=8)


class IdentityNet(nn.Module):
    """A frozen face network: ``(images (B, 3, H, W) in [-1, 1], landmarks (B, 68, 2) | None) -> (B, D)`` unit
    vectors, differentiable in the images. Kept out of the parameters and the state dict (checkpoints do not carry
    it), but moved by ``.to()``."""

    def __init__(self, kind: str = "synthetic"):
        super().__init__()
        if kind == "synthetic":
            from faceswaplab.metrics.embedders import SYNTHETIC_TRAIN, SyntheticEmbedder, synthetic_weights_path
            from faceswaplab.metrics.weights import WeightsUnavailable

            if IDENTITY_EMBEDDER["seed"] == SYNTHETIC_TRAIN["seed"]:
                raise ValueError("the training identity network must not be the benchmark's metric embedder")
            path = synthetic_weights_path(IDENTITY_EMBEDDER)
            if not path.is_file():
                raise WeightsUnavailable(
                    "simswap synthetic identity network", path,
                    "Make it (seeded, minutes): python -c 'from faceswaplab.methods.simswap import *; "
                    "train_synthetic_embedder(IDENTITY_EMBEDDER)'")
            embedder = SyntheticEmbedder(weights_path=path)
            net, self.input = embedder.net, embedder.input
        elif kind == "dlib":
            from faceswaplab.losses import IdentityLoss

            net = IdentityLoss()
        else:
            raise ValueError(f"identity_net must be 'synthetic' or 'dlib', got {kind!r}")
        self.kind = kind
        self._net = [net.eval().requires_grad_(False)]  # a list: not a submodule
        self.dim = 128

    def _apply(self, fn, *args, **kwargs):
        self._net[0]._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> Tensor:
        net = self._net[0]
        if self.kind == "dlib":
            return net.embed(images, landmarks)
        from faceswaplab.metrics.embedders import SYNTHETIC_REGION, _landmarks_or_canonical, warp_region

        lms = _landmarks_or_canonical(images, landmarks)
        return net(warp_region(images.float(), lms, SYNTHETIC_REGION, self.input))


class AdaIN(nn.Module):
    """Instance-normalise, then scale by (1 + gamma) and shift by beta, both linear in the identity vector."""

    def __init__(self, channels: int, latent: int):
        super().__init__()
        self.style = nn.Linear(latent, 2 * channels)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        gamma, beta = self.style(z)[..., None, None].chunk(2, 1)  # (B, C, 1, 1) each
        return F.instance_norm(x) * (1 + gamma) + beta


class IDBlock(nn.Module):
    """SimSwap's ID-injection block: x + [conv, AdaIN(z), ReLU, conv, AdaIN(z)](x)."""

    def __init__(self, channels: int, latent: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3))
        self.norm1, self.norm2 = AdaIN(channels, latent), AdaIN(channels, latent)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        y = F.relu(self.norm1(self.conv1(x), z))
        return x + self.norm2(self.conv2(y), z)


class IDInjectionGenerator(nn.Module):
    """(target (B, 3, S, S), identity (B, latent)) -> (B, 3, S, S) in [-1, 1].

    Encoder: 7x7 conv then `n_down` stride-2 convs (width doubling, at most 8x); `n_blocks` ID blocks; decoder:
    `n_down` times bilinear upsampling + 3x3 conv, then a 7x7 conv (the paper: width 64, 3 downsamplings, 9 blocks).
    """

    def __init__(self, latent: int, width: int = 64, n_down: int = 3, n_blocks: int = 9):
        super().__init__()

        def conv(cin, cout, k, stride=1):
            return [nn.Conv2d(cin, cout, k, stride, k // 2), nn.BatchNorm2d(cout), nn.ReLU(True)]

        chs = [width * min(2**i, 8) for i in range(n_down + 1)]
        enc = [nn.ReflectionPad2d(3), nn.Conv2d(3, width, 7), nn.BatchNorm2d(width), nn.ReLU(True)]
        for a, b in zip(chs, chs[1:]):
            enc += conv(a, b, 3, 2)
        self.encoder = nn.Sequential(*enc)  # (B, chs[-1], S / 2^n_down, S / 2^n_down)
        self.blocks = nn.ModuleList(IDBlock(chs[-1], latent) for _ in range(n_blocks))
        dec: list[nn.Module] = []
        for a, b in zip(chs[::-1], chs[-2::-1]):
            dec += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), *conv(a, b, 3)]
        dec += [nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)

    def forward(self, target: Tensor, z: Tensor) -> Tensor:
        h = self.encoder(target)
        for block in self.blocks:
            h = block(h, z)
        return self.decoder(h)


def weak_feature_matching(fake: list, real: list, n_last: int, n_layers: int) -> Tensor:
    """L1 between the last `n_last` feature maps of each scale's discriminator on fakes and reals (reals
    detached); layers weighted 4 / (n_layers + 1) and scales 1 / num_D as SimSwap's reference code weights them.
    `fake`, `real`: lists over scales of ``(logits, features)``."""
    total = fake[0][0].new_zeros(())
    w = 4.0 / (n_layers + 1) / len(fake)
    for (_, ff), (_, rf) in zip(fake, real):
        for f, r in list(zip(ff, rf))[-n_last:] if n_last > 0 else []:
            total = total + w * F.l1_loss(f, r.detach())
    return total


def pick_sources(identity: Tensor, same_ratio: float) -> tuple[Tensor, Tensor]:
    """For each target i of a batch with identities (N,): the index of its source and whether it is the same
    identity. With probability `same_ratio` another image of i's identity (i itself when there is none), else an
    image of another identity (another image of i's identity when the batch has no other identity). With many
    identities a batch seldom holds two images of one, and the image itself is the source of its reconstruction
    pair (as FaceShifter trains). Random from torch's global generator."""
    n = len(identity)
    same_id = identity[:, None] == identity[None]  # (N, N)
    eye = torch.eye(n, dtype=torch.bool, device=identity.device)
    want_same = torch.rand(n, device=identity.device) < same_ratio
    same_other = same_id & ~eye  # (N, N): another image of the same identity
    allowed = torch.where(want_same[:, None], same_other, ~same_id)
    allowed = torch.where(allowed.any(1, keepdim=True) | want_same[:, None], allowed, same_other)
    allowed = torch.where(allowed.any(1, keepdim=True), allowed, eye)  # else the image itself
    scores = torch.rand(n, n, device=identity.device).masked_fill(~allowed, -1.0)
    src = scores.argmax(1)
    return src, identity[src] == identity


class SimSwap(FaceSwapMethod):
    """Reads ``image``, ``landmarks``, ``identity`` of a many-identity batch, or the same keys ``_A``/``_B`` of a
    pair batch (pooled). ``swap(target, source)`` takes any two faces; `direction` is ignored."""

    trainable = True
    identity_specific = False
    tiny = {"width": 8, "n_down": 2, "n_blocks": 1, "disc_width": 8, "disc_layers": 2, "lr": 1e-3}
    fit_loss = "train/loss_rec"

    def __init__(self, image_size: int = 64, identity_net: str = "synthetic", width: int = 64, n_down: int = 3,
                 n_blocks: int = 9, disc_width: int = 64, disc_layers: int = 4, num_D: int = 2,
                 disc_norm: str = "instance", gan_mode: str = "hinge", lambda_id: float = 10.0,
                 lambda_rec: float = 10.0, lambda_feat: float = 10.0, lambda_gp: float = 1e-5, fm_layers: int = 2,
                 same_ratio: float = 0.5, lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999):
        super().__init__()
        self.save_hyperparameters()
        if not 0.0 <= same_ratio <= 1.0:
            raise ValueError(f"same_ratio must be within [0, 1], got {same_ratio}")
        if image_size % 2**n_down:
            raise ValueError(f"image_size {image_size} must be a multiple of 2^n_down = {2**n_down}")
        self.automatic_optimization = False
        self.id_net = IdentityNet(identity_net)
        self.netG = IDInjectionGenerator(self.id_net.dim, width, n_down, n_blocks)
        self.netD = MultiscaleDiscriminator(3, disc_width, disc_layers, disc_norm, num_D)
        init_weights(self.netG, "normal", 0.02)
        init_weights(self.netD, "normal", 0.02)
        self.criterion_gan = GANLoss(gan_mode)

    def identity(self, images: Tensor, landmarks: Tensor | None = None) -> Tensor:
        """Unit identity vectors (B, D) of faces (B, 3, S, S) from the frozen identity network."""
        return self.id_net(images, landmarks)

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        if source is None:
            raise ValueError("SimSwap.swap needs a source face (its identity is put onto the target)")
        with torch.no_grad():
            z = self.identity(source, source_landmarks)
        return self.netG(target, z)

    @staticmethod
    def pooled(batch: dict, name: str) -> Tensor:
        """Field `name` of a many-identity batch, or the A and B sides of a pair batch concatenated."""
        if name in batch:
            return batch[name]
        return torch.cat([batch[key(name, x)] for x in SIDES])

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        target, lms = self.pooled(batch, IMAGE), self.pooled(batch, LANDMARKS)  # (N, 3, S, S), (N, 68, 2)
        src, same = pick_sources(self.pooled(batch, IDENTITY), hp.same_ratio)
        with torch.no_grad():
            z = self.identity(target[src], lms[src])  # (N, D)
        fake = self.netG(target, z)
        losses: dict[str, Tensor] = {}

        with self.toggled_optimizer(opt_d):
            losses["loss_D_fake"] = self.criterion_gan(self.netD(fake.detach()), False)
            losses["loss_D_real"] = self.criterion_gan(self.netD(target), True)
            total_d = losses["loss_D_fake"] + losses["loss_D_real"]
            if hp.lambda_gp > 0:
                losses["loss_D_GP"] = self.gradient_penalty(target, fake.detach()) * hp.lambda_gp
                total_d = total_d + losses["loss_D_GP"]
            opt_d.zero_grad()
            self.manual_backward(total_d)
            opt_d.step()

        with self.toggled_optimizer(opt_g):
            pred_fake = self.netD(fake, features=True)
            with torch.no_grad():
                pred_real = self.netD(target, features=True)
            losses["loss_G"] = self.criterion_gan(pred_fake, True, for_discriminator=False)
            losses["loss_FM"] = weak_feature_matching(pred_fake, pred_real, hp.fm_layers,
                                                      hp.disc_layers) * hp.lambda_feat
            # The result keeps the target's pose: the target's landmarks locate its face.
            cos = (self.identity(fake, lms) * z).sum(1)
            losses["loss_id"] = (1 - cos).mean() * hp.lambda_id
            rec = (fake - target).abs().mean((1, 2, 3))  # (N,)
            losses["loss_rec"] = (rec * same).sum() / same.sum().clamp_min(1) * hp.lambda_rec
            total_g = losses["loss_G"] + losses["loss_FM"] + losses["loss_id"] + losses["loss_rec"]
            opt_g.zero_grad()
            self.manual_backward(total_g)
            opt_g.step()

        n = len(target)
        self.log_losses(losses, total_g, n)

    def gradient_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        """WGAN-GP's (||grad D(x_hat)|| - 1)^2 at x_hat between real and fake, summed over the scales (as
        SimSwap's reference computes it)."""
        alpha = torch.rand(len(real), 1, 1, 1, device=real.device)
        x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        out = sum(p.sum() for p in self.netD(x))
        (grad,) = torch.autograd.grad(out, x, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def configure_optimizers(self):
        hp = self.hparams
        betas = (hp.beta1, hp.beta2)
        return [self.adam(self.netG.parameters(), lr=hp.lr, betas=betas),
                self.adam(self.netD.parameters(), lr=hp.lr, betas=betas)]

    # ---------------------------------------------------------------- previews and validation on any batch


def train_synthetic_embedder(config: dict = IDENTITY_EMBEDDER):
    """Train (seeded) and cache the synthetic identity network this method uses; returns its path."""
    from faceswaplab.metrics.embedders import train_synthetic_embedder as train

    return train(config)
