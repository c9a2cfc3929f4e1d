"""Few-shot reenactment (Zakharov et al. 2019, "Few-Shot Adversarial Learning of Realistic Neural Talking Head
Models", arXiv 1905.08233): draw a person seen in K photos with the pose and expression of a driving face.

An embedder maps K (frame, landmark sketch) pairs of the source to one identity vector (their mean); a generator
draws the target's landmark sketch, moved onto the source's face shape as :mod:`faceswaplab.methods.pix2pix` does,
with AdaIN parameters projected from that vector; a projection discriminator scores (frame, sketch) pairs against a
per-identity embedding. Meta-learning runs on episodes of K + 1 frames of one identity: ``data.mode=many`` with
``data.group_size=K+1``, or the A and B halves of a pair batch; every frame of an episode is drawn once, embedded by
the episode's other K frames (the paper draws one frame per episode; this gives K + 1 examples per embedder pass).
The target's landmarks are moved from the training population's mean face shape onto the source's (the mean of its
shots' landmarks): one driving frame says nothing of its own person's shape. Fine-tuning on a new
identity (``+finetune=<folder or video>``, see :meth:`FewShot.finetune_setup`) starts the person's AdaIN parameters
at P e_NEW and its discriminator embedding at e_NEW, as the paper's section 3.3.

Code names -> paper names:
    embedder: E(x_i(s), y_i(s); phi)         netG: G(y, psi; theta)      proj: P, psi_hat = P e_hat
    netD: V(x, y; theta) with identity_embedding W, w0, b: r(x, y, i) = V^T (W_i + w0) + b
    psi_person, w_person: the fine-tuned psi' and w' of section 3.3
    loss_cnt: L_CNT, content: lambda_face * face-network feature L1 (dlib's ResNet in place of VGGFace) +
              lambda_vgg * VGG19 feature L1 (where torchvision's VGG19 weights are cached; else left out, logged)
    loss_adv: L_ADV's realism term, -D(x_hat, y, i)     loss_FM: L_ADV's feature matching, lambda_FM * L1 of V's maps
    loss_mch: L_MCH, lambda_MCH * ||W_i - e_hat_i||_1 (meta-learning only)
    loss_D: L_DSC, hinge max(0, 1 + D(x_hat)) + max(0, 1 - D(x)), taken d_steps times per generator step
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from faceswaplab.data.schema import IDENTITY, IMAGE, LANDMARKS, SIDES, key
from faceswaplab.faces.sketch import draw_landmark_sketch
from faceswaplab.methods.base import FaceSwapMethod
from faceswaplab.methods.pix2pix import retarget_landmarks, update_mean_shape

log = logging.getLogger(__name__)


def conv(cin: int, cout: int, k: int = 3) -> nn.Module:
    """A spectrally normalised convolution, as every convolution of the paper's networks."""
    return spectral_norm(nn.Conv2d(cin, cout, k, padding=k // 2))


class ResDown(nn.Module):
    """BigGAN-style residual down block: [norm, ReLU, conv, norm, ReLU, conv, avgpool] + [conv1x1, avgpool]."""

    def __init__(self, cin: int, cout: int, norm: bool):
        super().__init__()
        n = (lambda c: nn.InstanceNorm2d(c, affine=True)) if norm else (lambda c: nn.Identity())
        self.main = nn.Sequential(n(cin), nn.ReLU(), conv(cin, cout), n(cout), nn.ReLU(), conv(cout, cout),
                                  nn.AvgPool2d(2))
        self.skip = nn.Sequential(conv(cin, cout, 1), nn.AvgPool2d(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.skip(x)


def channels(width: int, max_width: int, n: int) -> list[int]:
    return [min(width * 2**i, max_width) for i in range(n + 1)]


class Encoder(nn.Module):
    """(B, C, S, S) -> vector (B, D) by residual down blocks to 4 x 4 and global sum pooling (the paper's embedder
    and the discriminator's V); ``features=True`` also returns the blocks' maps (for feature matching)."""

    def __init__(self, in_ch: int, image_size: int, width: int, max_width: int):
        super().__init__()
        chs = channels(width, max_width, int(math.log2(image_size)) - 2)
        self.stem = conv(in_ch, chs[0])
        self.blocks = nn.ModuleList(ResDown(a, b, norm=False) for a, b in zip(chs, chs[1:]))
        self.dim = chs[-1]

    def forward(self, x: Tensor, features: bool = False):
        h, maps = self.stem(x), []
        for block in self.blocks:
            h = block(h)
            maps.append(h)
        v = F.relu(h).sum((2, 3))  # (B, D)
        return (v, maps) if features else v


class AdaResBlock(nn.Module):
    """[AdaIN, ReLU, (upsample), conv, AdaIN, ReLU, conv] + skip ((upsample, conv1x1) when shapes change). AdaIN:
    instance norm, then scale (1 + gamma) and shift beta, taken from the slice of psi this block owns."""

    def __init__(self, cin: int, cout: int, up: bool):
        super().__init__()
        self.up = up
        self.conv1, self.conv2 = conv(cin, cout), conv(cout, cout)
        self.skip = conv(cin, cout, 1) if (up or cin != cout) else nn.Identity()
        self.sizes = [2 * cin, 2 * cout]  # psi entries of the two AdaINs

    @staticmethod
    def adain(x: Tensor, p: Tensor) -> Tensor:
        gamma, beta = p[..., None, None].chunk(2, 1)  # (B, C, 1, 1) each
        return F.instance_norm(x) * (1 + gamma) + beta

    def forward(self, x: Tensor, psi: Tensor) -> Tensor:
        p1, p2 = psi.split(self.sizes, 1)
        h = F.relu(self.adain(x, p1))
        if self.up:
            h, x = F.interpolate(h, scale_factor=2.0), F.interpolate(x, scale_factor=2.0)
        h = self.conv2(F.relu(self.adain(self.conv1(h), p2)))
        return h + self.skip(x)


class Generator(nn.Module):
    """(sketch (B, C, S, S), psi (B, n_psi)) -> (B, 3, S, S) in [-1, 1]: instance-normalised residual down blocks,
    AdaIN residual blocks, AdaIN residual up blocks (the paper's image-to-image generator)."""

    def __init__(self, in_ch: int, width: int, max_width: int, n_down: int, n_blocks: int):
        super().__init__()
        chs = channels(width, max_width, n_down)
        self.stem = conv(in_ch, chs[0])
        self.down = nn.Sequential(*[ResDown(a, b, norm=True) for a, b in zip(chs, chs[1:])])
        self.blocks = nn.ModuleList([AdaResBlock(chs[-1], chs[-1], False) for _ in range(n_blocks)] +
                                    [AdaResBlock(a, b, True) for a, b in zip(chs[:0:-1], chs[-2::-1])])
        self.out = nn.Sequential(nn.InstanceNorm2d(chs[0], affine=True), nn.ReLU(), conv(chs[0], 3), nn.Tanh())
        self.n_psi = sum(sum(b.sizes) for b in self.blocks)

    def forward(self, sketch: Tensor, psi: Tensor) -> Tensor:
        h = self.down(self.stem(sketch))
        for block, p in zip(self.blocks, psi.split([sum(b.sizes) for b in self.blocks], 1)):
            h = block(h, p)
        return self.out(h)


class FewShot(FaceSwapMethod):
    """Reads ``image``, ``landmarks``, ``identity`` of a many-identity batch (episodes: frames sharing an
    identity), or ``_A``/``_B`` of a pair batch (each side an episode). ``swap(target, source, shots=K)``: `source`
    holds K crops per target (K in all: shared by every target), with their landmarks; without `shots`, one source
    crop (or one per target) is a 1-shot swap. After fine-tuning, ``swap(target)`` draws the fine-tuned person."""

    trainable = True
    identity_specific = False
    tiny = {"width": 8, "max_width": 16, "gen_blocks": 1, "d_steps": 1, "lr_G": 1e-3, "lr_D": 1e-3}
    fit_loss = "train/loss"  # the meta-learning objective L_CNT + L_ADV + L_MCH that E, G and P minimise

    def __init__(self, image_size: int = 64, K: int = 8, width: int = 64, max_width: int = 512, gen_down: int = 2,
                 gen_blocks: int = 4, num_identities: int = 1024, sketch_thickness: float = 1.0,
                 lambda_face: float = 2.5e-2, lambda_vgg: float = 1.5e-1, lambda_FM: float = 10.0,
                 lambda_mch: float = 80.0, d_steps: int = 2, lr_G: float = 5e-5, lr_D: float = 2e-4,
                 beta1: float = 0.0, beta2: float = 0.999, shape_momentum: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        if image_size & (image_size - 1) or image_size < 16:
            raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
        if K < 1:
            raise ValueError(f"K must be at least 1, got {K}")
        self.automatic_optimization = False
        self.embedder = Encoder(3 + 1, image_size, width, max_width)  # (frame, sketch) -> e
        dim = self.embedder.dim
        self.netG = Generator(1, width, max_width, gen_down, gen_blocks)
        self.proj = nn.Linear(dim, self.netG.n_psi, bias=False)  # P
        self.netD = Encoder(3 + 1, image_size, width, max_width)  # V
        self.identity_embedding = nn.Embedding(num_identities, dim)  # W
        self.w0 = nn.Parameter(torch.zeros(dim))
        self.b = nn.Parameter(torch.zeros(()))
        nn.init.normal_(self.identity_embedding.weight, std=0.02)
        nn.init.normal_(self.proj.weight, std=0.02 / math.sqrt(dim))
        # The fine-tuned person (section 3.3): psi', w', its face shape; unused until fine-tuning sets them.
        self.psi_person = nn.Parameter(torch.zeros(self.netG.n_psi))
        self.w_person = nn.Parameter(torch.zeros(dim))
        self.register_buffer("mean_person", torch.zeros(68, 2))
        self.register_buffer("person_ready", torch.zeros((), dtype=torch.bool))
        # The population's mean face shape (crop pixels): the reference the target's landmarks are moved from.
        self.register_buffer("mean_landmarks", torch.zeros(68, 2))
        self.register_buffer("shape_seen", torch.zeros((), dtype=torch.bool))
        self.__dict__["content"] = None  # built when training starts; out of the state dict
        self.__dict__["finetune_source"] = None

    # ------------------------------------------------------------------------------------------- the maths

    def sketch(self, landmarks: Tensor) -> Tensor:
        """Landmarks (B, 68, 2) -> (B, 1, S, S) sketches in [-1, 1] (pix2pix's drawing)."""
        return draw_landmark_sketch(landmarks, self.hparams.image_size, self.hparams.sketch_thickness)

    def embed(self, images: Tensor, landmarks: Tensor) -> Tensor:
        """e_hat: the mean over K of E(frame, sketch). images (B, K, 3, S, S), landmarks (B, K, 68, 2) -> (B, D)."""
        B, K = images.shape[:2]
        x = torch.cat([images.flatten(0, 1), self.sketch(landmarks.flatten(0, 1))], 1)
        return self.embedder(x).view(B, K, -1).mean(1)

    def score(self, images: Tensor, sketches: Tensor, w: Tensor, features: bool = False):
        """The projection discriminator r = V(x, y)^T (w + w0) + b, with w (B, D) the identity's embedding row."""
        v, maps = self.netD(torch.cat([images, sketches], 1), features=True)
        r = (v * (w + self.w0)).sum(1) + self.b  # (B,)
        return (r, maps) if features else r

    def draw(self, target_landmarks: Tensor, psi: Tensor, source_shape: Tensor) -> Tensor:
        """The generator on the target's landmarks moved onto `source_shape` (B, 68, 2) mean landmarks."""
        reference = self.mean_landmarks if self.shape_seen else target_landmarks.mean(0)
        moved = retarget_landmarks(target_landmarks, reference, source_shape)
        return self.netG(self.sketch(moved), psi)

    # ------------------------------------------------------------------------------------------- swapping

    def swap(self, target, source=None, *, target_landmarks=None, source_landmarks=None, direction=None,
             shots: int | None = None):
        """:meth:`FaceSwapMethod.swap` with `shots` = K source crops per target (see the class docstring)."""
        if shots is None or source is None:
            return super().swap(target, source, target_landmarks=target_landmarks,
                                source_landmarks=source_landmarks, direction=direction)

        def given(src: Tensor, lms: Tensor) -> tuple[Tensor, Tensor]:  # (B', K, ...) -> embedding, mean shape
            with torch.no_grad():
                return self.embed(src, lms), lms.mean(1)

        return self.swap_from_shots(target, source, shots, given, target_landmarks=target_landmarks,
                                    source_landmarks=source_landmarks)

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        if target_landmarks is None:
            raise ValueError("FewShot.swap needs target_landmarks (B, 68, 2): the driving pose and expression")
        B = len(target)
        if source is not None:
            if source_landmarks is None:
                raise ValueError("FewShot.swap needs source_landmarks (B, 68, 2) with the source crops")
            e, shape = self.embed(source[:, None], source_landmarks[:, None]), source_landmarks
        elif "given" in self.__dict__:
            e, shape = self.__dict__["given"]
        elif self.person_ready:
            psi = self.psi_person.expand(B, -1)
            return self.draw(target_landmarks, psi, self.mean_person.expand(B, -1, -1))
        else:
            raise ValueError("FewShot.swap needs source crops (this model is not fine-tuned on a person)")
        if len(e) not in (1, B):
            raise ValueError(f"{len(e)} source sets for {B} targets (give one, or one per target)")
        e, shape = e.expand(B, -1), shape.expand(B, -1, -1)
        return self.draw(target_landmarks, self.proj(e), shape)

    # ------------------------------------------------------------------------------------------- training

    @staticmethod
    def pooled(batch: dict, name: str) -> Tensor:
        """Field `name` of a many-identity batch, or the A and B sides of a pair batch concatenated."""
        if name in batch:
            return batch[name]
        return torch.cat([batch[key(name, x)] for x in SIDES])

    def episodes(self, identity: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Cut a batch (identities (N,)) into episodes of at most K + 1 frames of one identity (a last lone frame
        joins the episode before it; identities with one frame are left out). Returns (frame index (T,), its
        episode (T,), each episode's identity (E,))."""
        if int(identity.max()) >= self.hparams.num_identities:
            raise ValueError(f"FewShot: identity {int(identity.max())} in a batch, but method.num_identities is "
                             f"{self.hparams.num_identities} (rows of the discriminator's W): raise it")
        frames, episode, ids = [], [], []
        for u in identity.unique(sorted=True).tolist():
            idx = (identity == u).nonzero()[:, 0]
            cuts = list(idx.split(self.hparams.K + 1))
            if len(cuts) > 1 and len(cuts[-1]) == 1:
                cuts[-2:] = [torch.cat(cuts[-2:])]
            for cut in cuts if len(idx) > 1 else []:
                frames.append(cut)
                episode.append(torch.full_like(cut, len(ids)))
                ids.append(u)
        if not ids:
            raise ValueError("FewShot: no identity has two frames in this batch; meta-learning needs episodes "
                             f"(data.mode=many with data.group_size={self.hparams.K + 1}, or pair batches)")
        return torch.cat(frames), torch.cat(episode), torch.tensor(ids, device=identity.device)

    @staticmethod
    def leave_one_out(e: Tensor, episode: Tensor) -> Tensor:
        """e_hat of every frame (T, D): the mean of E over the other frames of its episode (its K shots), so
        that an episode of K + 1 frames gives K + 1 (target, K shots) examples for one pass of the embedder."""
        n = int(episode.max()) + 1
        sums = torch.zeros(n, e.shape[1], device=e.device, dtype=e.dtype).index_add(0, episode, e)
        counts = torch.zeros(n, device=e.device, dtype=e.dtype).index_add(0, episode, torch.ones_like(e[:, 0]))
        return (sums[episode] - e) / (counts[episode, None] - 1)

    def content_loss(self, fake: Tensor, real: Tensor, landmarks: Tensor) -> Tensor:
        face, vgg = self.content
        loss = face(fake, real, landmarks) * self.hparams.lambda_face
        return loss + vgg(fake, real) * self.hparams.lambda_vgg if vgg is not None else loss

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        images, lms = self.pooled(batch, IMAGE), self.pooled(batch, LANDMARKS)  # (N, 3, S, S), (N, 68, 2)
        sketches = self.sketch(lms)  # (N, 1, S, S)
        losses: dict[str, Tensor] = {}
        if self.finetune_source is None:  # meta-learning on episodes
            self._update_mean_shape(lms)
            tgt, episode, ep_ids = self.episodes(self.pooled(batch, IDENTITY))
            e_hat = self.leave_one_out(self.embedder(torch.cat([images[tgt], sketches[tgt]], 1)), episode)  # (T, D)
            psi, w = self.proj(e_hat), lambda: self.identity_embedding(ep_ids[episode])
        else:  # fine-tuning on one person: every frame is a target, psi' and w' stand for P e_hat and W_i
            tgt = torch.arange(len(images), device=images.device)
            psi, w = self.psi_person.expand(len(tgt), -1), lambda: self.w_person.expand(len(tgt), -1)
        real, sk = images[tgt], sketches[tgt]
        fake = self.netG(sk, psi)

        with self.toggled_optimizer(opt_d):
            for _ in range(hp.d_steps):
                losses["loss_D"] = (F.relu(1 + self.score(fake.detach(), sk, w())).mean()
                                    + F.relu(1 - self.score(real, sk, w())).mean())
                opt_d.zero_grad()
                self.manual_backward(losses["loss_D"])
                opt_d.step()

        with self.toggled_optimizer(opt_g):
            r_fake, f_fake = self.score(fake, sk, w(), features=True)
            with torch.no_grad():
                _, f_real = self.score(real, sk, w(), features=True)
            losses["loss_adv"] = -r_fake.mean()
            losses["loss_FM"] = sum(F.l1_loss(a, b) for a, b in zip(f_fake, f_real)) * hp.lambda_FM
            losses["loss_cnt"] = self.content_loss(fake, real, lms[tgt])
            if self.finetune_source is None:
                losses["loss_mch"] = (w() - e_hat).abs().mean() * hp.lambda_mch
            total = sum(v for k, v in losses.items() if k != "loss_D")
            opt_g.zero_grad()
            self.manual_backward(total)
            opt_g.step()

        self.log_losses(losses, total, len(tgt))

    def _update_mean_shape(self, landmarks: Tensor) -> None:
        update_mean_shape(self, self.mean_landmarks, self.shape_seen, landmarks, self.hparams.shape_momentum)

    def configure_optimizers(self):
        hp = self.hparams
        betas = (hp.beta1, hp.beta2)
        shared = [*self.identity_embedding.parameters(), self.w0, self.b, self.w_person]  # in L and L_DSC both
        opt_g = self.adam([*self.embedder.parameters(), *self.netG.parameters(), *self.proj.parameters(),
                           self.psi_person, *shared], lr=hp.lr_G, betas=betas)
        opt_d = self.adam([*self.netD.parameters(), *shared], lr=hp.lr_D, betas=betas)
        return [opt_g, opt_d]

    def on_fit_start(self) -> None:
        # Before the first batch, so that a missing face network stops the run at once with the file's name.
        if self.content is None:
            from faceswaplab.losses import FacePerceptualLoss, vgg_loss_if_cached

            vgg = vgg_loss_if_cached("FewShot: VGG19's weights are not available, so L_CNT is the face network's "
                                     "term alone", self.device) if self.hparams.lambda_vgg > 0 else None
            self.__dict__["content"] = (FacePerceptualLoss().to(self.device), vgg)
        if self.finetune_source is not None and not self.person_ready:
            self.init_person(self.trainer.datamodule)

    # ------------------------------------------------------------------------------------------- fine-tuning

    def finetune_setup(self, source, meta_checkpoint, datamodule):
        """K-shot fine-tuning on one new identity (the paper's section 3.3): load the meta-learnt weights of
        `meta_checkpoint` and return a data module of `source` (a folder of photos or a video, prepared as
        ``data=folders`` / ``data=video`` do, or a data source such as ``SyntheticIdentity``) with `datamodule`'s
        settings. Its training frames are the K shots; the person's psi' and w' start from the embedder when
        training starts (:meth:`init_person`)."""
        from pathlib import Path

        from faceswaplab import checkpoints
        from faceswaplab.data import FaceDataModule, RawIdentity

        if isinstance(source, (str, Path)):
            if not Path(source).expanduser().exists():
                raise FileNotFoundError(f"finetune={source}: no such folder or video")
            source = RawIdentity(str(Path(source).expanduser()))
        state = checkpoints.load(meta_checkpoint)["state_dict"]
        self.load_state_dict(state)
        self.person_ready.fill_(False)
        self.__dict__["finetune_source"] = source
        dm = datamodule
        return FaceDataModule(identities=[source], mode="many", image_size=dm.image_size, batch_size=dm.batch_size,
                              eval_batch_size=dm.eval_batch_size, num_workers=dm.num_workers, splits=dm.fractions,
                              seed=dm.seed, augment=dm.augment, cache_dir=dm.cache_dir, prepare=dm.prepare_options,
                              forehead=dm.forehead, drop_last=False)

    @torch.no_grad()
    def init_person(self, datamodule, split: str = "train") -> None:
        """psi' = P e_NEW and w' = e_NEW, e_NEW the embedder's mean over the person's frames of `split` (at most
        64); the person's face shape is their mean landmarks."""
        from faceswaplab.data.samples import SampleRef

        n = min(64, len(datamodule.dataset(split)))
        if n == 0:
            raise ValueError(f"finetune: the person has no {split} frames to embed")
        batch = datamodule.load([SampleRef(0, i) for i in range(n)], split)
        images, lms = batch[IMAGE].to(self.device), batch[LANDMARKS].to(self.device)
        e_new = self.embed(images[None], lms[None])[0]
        self.psi_person.copy_(self.proj(e_new))
        self.w_person.copy_(e_new)
        self.mean_person.copy_(lms.mean(0))
        self.person_ready.fill_(True)
        log.info("FewShot: fine-tuning from the embedding of %d frames", n)

    # ------------------------------------------------------------------------------------ previews, validation

    def swap_many(self, images: Tensor, landmarks: Tensor) -> tuple[Tensor, Tensor]:
        if self.finetune_source is None:
            return super().swap_many(images, landmarks)
        # the fine-tuned person driven by its held-out frames (the sources column shows other frames of it)
        return torch.roll(images, 1, 0), self.swap_tensors(images, target_landmarks=landmarks)
