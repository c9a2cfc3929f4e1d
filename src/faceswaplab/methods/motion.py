"""Keypoint-motion reenactment after Siarohin et al. 2019, "First Order Motion Model for Image Animation" (NeurIPS
2019): a photo of the source is animated with the pose and expression of a driving face by warping its features.

Sparse motions: around each keypoint k a first-order (local affine) map from the driving frame D to the source S,
T_k(z) = p_k^S + J_k (z - p_k^D), plus the identity map (the background). A dense motion network (an hourglass)
reads the source deformed by each sparse motion and each keypoint's heatmap difference and returns softmax masks over
the motions, whose weighted sum is a dense backward flow, and an occlusion map. The generator encodes the source,
warps its features by the flow (grid_sample), multiplies them by the occlusion map, and decodes them through residual
blocks. Training is the paper's self-supervision: two frames of one identity (``data.mode=many`` with
``data.group_size=2``, or frames of one side of a pair batch), each drawn from the other.

Our deviation from the paper: the keypoints are not learnt (no keypoint detector, no equivariance loss). They are
the centres of 10 regions of the 68 landmarks every batch has (each half of the jaw, each brow, nose bridge,
nostrils, each eye, outer and inner lips), and a region's Jacobian is its landmarks' least-squares affine fit
(closed form). A further candidate motion is the similarity fitted to all 68 landmarks (Procrustes).

Swap: the target's landmarks are moved onto the source's face shape as :func:`~faceswaplab.methods.pix2pix.
retarget_landmarks` does (the paper's relative motion), the source photo is animated to them, and the drawn face is
feathered onto the target crop through its face mask. With K source photos, the one whose normalised landmarks are
nearest the driving landmarks is animated (the paper's "best frame").

Code names -> paper names:
    sparse_motions: T_{S<-D}(z) of eq. (4), T_S<-R(p_k) + J_k (z - T_D<-R(p_k)), with the region fit J_k = J_S J_D^-1
                    in one step; motion 0 the identity (background), motion 1 the global similarity
    dense: M, the dense motion network: masks M_k (eq. 8) and the occlusion map O_hat (eq. 9)
    netG: the generator: encoder, f_w(xi, T_hat) * O_hat, residual blocks, decoder
    loss_rec: lambda_rec * multi-scale L1 over an image pyramid (ours: a pixel term for short runs)
    loss_perc: lambda_vgg * VGG19 feature L1 over the same pyramid, the paper's L_rec (where torchvision's VGG19
               weights are cached; else left out, logged)
    loss_face: lambda_face * face-network feature L1 (dlib's ResNet), a content term on the face
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceswaplab.data.schema import IDENTITY, IMAGE, LANDMARKS
from faceswaplab.faces.masks import face_hull_mask
from faceswaplab.methods.base import FaceSwapMethod
from faceswaplab.methods.fewshot import FewShot
from faceswaplab.methods.pix2pix import fit_similarity, retarget_landmarks, update_mean_shape

# The 68 landmarks' regions whose centres are the keypoints (the jaw's middle point 8 belongs to both halves).
REGIONS = (range(0, 9), range(8, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36), range(36, 42),
           range(42, 48), range(48, 60), range(60, 68))
NUM_MOTIONS = len(REGIONS) + 2  # + the identity (background) and the global similarity


def to_grid_coords(points: Tensor, size: int) -> Tensor:
    """Pixel coordinates (pixel centres at integers) -> grid_sample's [-1, 1] (align_corners=False)."""
    return (2 * points + 1) / size - 1


def base_grid(h: int, w: int, like: Tensor) -> Tensor:
    """(h, w, 2) grid_sample coordinates (x, y) of the pixel centres: sampling with it returns the image."""
    ys = (2 * torch.arange(h, device=like.device, dtype=like.dtype) + 1) / h - 1
    xs = (2 * torch.arange(w, device=like.device, dtype=like.dtype) + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)


def fit_affine(src: Tensor, dst: Tensor, prior: Tensor, ridge: float) -> Tensor:
    """Least-squares affine maps (B, 2, 3) taking points src (B, N, 2) onto dst (B, N, 2) through their centres.

    The linear part A minimises sum_i |A s_i - d_i|^2 + lam |A - prior|^2 (centred points; prior (B, 2, 2)), lam =
    `ridge` times the mean squared spread: a nearly straight region (the nose bridge) gets the prior's stretch across
    itself instead of a singular fit. The centres map onto each other exactly."""
    mu_s, mu_d = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    s, d = src - mu_s, dst - mu_d  # (B, N, 2)
    sts = s.transpose(1, 2) @ s  # (B, 2, 2)
    lam = ridge * sts.diagonal(dim1=1, dim2=2).sum(-1).div(2).clamp_min(1e-8)[:, None, None]
    eye = torch.eye(2, device=src.device, dtype=src.dtype)
    A = (d.transpose(1, 2) @ s + lam * prior) @ torch.linalg.inv(sts + lam * eye)  # (B, 2, 2)
    t = mu_d[:, 0] - (A @ mu_s[:, 0, :, None])[..., 0]
    return torch.cat([A, t[..., None]], -1)


def region_maps(driver: Tensor, source: Tensor, ridge: float) -> Tensor:
    """The M affine maps (B, M, 2, 3) from driving points (B, 68, 2) to source points: the identity, the global
    similarity, then one least-squares affine per region of :data:`REGIONS`."""
    glob = fit_similarity(driver, source)  # (B, 2, 3)
    eye = torch.eye(2, 3, device=driver.device, dtype=driver.dtype).expand(len(driver), 2, 3)
    return torch.stack([eye, glob] + [fit_affine(driver[:, r], source[:, r], glob[:, :, :2], ridge)
                                      for r in REGIONS], 1)


def keypoints(points: Tensor) -> Tensor:
    """(B, 68, 2) -> (B, M - 1, 2): the centroid (the global motion's keypoint), then the region centres."""
    return torch.stack([points.mean(1)] + [points[:, r].mean(1) for r in REGIONS], 1)


def sparse_motions(driver: Tensor, source: Tensor, h: int, w: int, ridge: float) -> Tensor:
    """Backward maps (B, M, h, w, 2) from driving landmarks (B, 68, 2) to source landmarks, both in grid
    coordinates: where each pixel of the driving frame comes from in the source, per motion."""
    m = region_maps(driver, source, ridge)  # (B, M, 2, 3)
    grid = base_grid(h, w, driver)  # (h, w, 2)
    return torch.einsum("bmij,hwj->bmhwi", m[..., :2], grid) + m[:, :, None, None, :, 2]


def heatmaps(points: Tensor, h: int, w: int, variance: float) -> Tensor:
    """Gaussians (B, P, h, w) around points (B, P, 2) in grid coordinates (the paper's keypoint heatmaps)."""
    d2 = (base_grid(h, w, points) - points[:, :, None, None]).pow(2).sum(-1)
    return torch.exp(-0.5 * d2 / variance)


def warp(x: Tensor, flow: Tensor) -> Tensor:
    """Sample x (B, C, h, w) at flow (B, h', w', 2) (resized to x's size when it differs)."""
    if flow.shape[1:3] != x.shape[2:]:
        # resize the displacement, not the coordinates: interpolation clamps at the borders, and the identity
        # flow must stay the identity
        shift = (flow - base_grid(*flow.shape[1:3], flow)).permute(0, 3, 1, 2)
        shift = F.interpolate(shift, size=x.shape[2:], mode="bilinear", align_corners=False)
        flow = base_grid(*x.shape[2:], flow) + shift.permute(0, 2, 3, 1)
    return F.grid_sample(x, flow, mode="bilinear", padding_mode="zeros", align_corners=False)


def best_shot(driver: Tensor, shots: Tensor) -> Tensor:
    """Index (B,) of the shot (landmarks (B, K, 68, 2)) nearest to driver (B, 68, 2), both centred and scaled to
    unit RMS radius (pose and expression decide, not where the face sits in the crop or its size)."""
    def normalise(p: Tensor) -> Tensor:
        p = p - p.mean(-2, keepdim=True)
        return p / p.pow(2).sum((-2, -1), keepdim=True).div(p.shape[-2]).sqrt().clamp_min(1e-8)

    return (normalise(shots) - normalise(driver)[:, None]).pow(2).sum((-2, -1)).argmin(1)


def block(cin: int, cout: int, k: int = 3) -> nn.Module:
    """conv, batch norm, ReLU (the paper's building block)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU())


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(ReLU(BN(conv(ReLU(BN(x))))))."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Hourglass(nn.Module):
    """U-Net of `depth` (block, 2x avg-pool) steps down and (2x upsample, block) steps up with skip concatenations;
    (B, cin, h, w) -> (B, out_ch, h, w), h and w divisible by 2^depth."""

    def __init__(self, cin: int, width: int, max_width: int, depth: int):
        super().__init__()
        chs = [cin] + [min(width * 2**i, max_width) for i in range(1, depth + 1)]  # level i's channels
        outs = [min(width * 2**i, max_width) for i in range(depth - 1, -1, -1)]  # up block i -> level depth-1-i
        ins = [chs[depth]] + [o + chs[depth - 1 - i] for i, o in enumerate(outs[:-1])]
        self.down = nn.ModuleList(block(a, b) for a, b in zip(chs, chs[1:]))
        self.up = nn.ModuleList(block(a, b) for a, b in zip(ins, outs))
        self.out_ch = outs[-1] + cin

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for down in self.down:
            feats.append(F.avg_pool2d(down(feats[-1]), 2))
        h = feats.pop()
        for up in self.up:
            h = torch.cat([up(F.interpolate(h, scale_factor=2.0)), feats.pop()], 1)
        return h


class DenseMotion(nn.Module):
    """The dense motion network: (source (B, 3, h, w), grids (B, M, h, w, 2), heatmap differences (B, M, h, w)) ->
    (flow (B, h, w, 2), occlusion (B, 1, h, w) in (0, 1), masks (B, M, h, w) summing to 1)."""

    def __init__(self, width: int, max_width: int, depth: int):
        super().__init__()
        self.hourglass = Hourglass(NUM_MOTIONS * 4, width, max_width, depth)
        self.mask = nn.Conv2d(self.hourglass.out_ch, NUM_MOTIONS, 7, padding=3)
        self.occlusion = nn.Conv2d(self.hourglass.out_ch, 1, 7, padding=3)
        with torch.no_grad():  # start from the global similarity, so that the first steps already move the face
            self.mask.bias.zero_()[1] = 2.0

    def forward(self, source: Tensor, grids: Tensor, heat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, M, h, w, _ = grids.shape
        deformed = F.grid_sample(source.repeat_interleave(M, 0), grids.flatten(0, 1), align_corners=False)
        x = torch.cat([heat[:, :, None], deformed.view(B, M, 3, h, w)], 2).flatten(1, 2)  # (B, 4M, h, w)
        feat = self.hourglass(x)
        masks = self.mask(feat).softmax(1)  # (B, M, h, w)
        flow = (masks[..., None] * grids).sum(1)  # (B, h, w, 2)
        return flow, torch.sigmoid(self.occlusion(feat)), masks


class Generator(nn.Module):
    """(source (B, 3, S, S), flow, occlusion) -> (B, 3, S, S) in [-1, 1]: encoder to S / 2^n_down, warp, times
    occlusion, residual blocks, decoder."""

    def __init__(self, width: int, max_width: int, n_down: int, n_blocks: int):
        super().__init__()
        chs = [min(width * 2**i, max_width) for i in range(n_down + 1)]
        self.first = block(3, chs[0], 7)
        self.down = nn.Sequential(*[nn.Sequential(block(a, b), nn.AvgPool2d(2)) for a, b in zip(chs, chs[1:])])
        self.blocks = nn.Sequential(*[ResBlock(chs[-1]) for _ in range(n_blocks)])
        self.up = nn.Sequential(*[nn.Sequential(nn.Upsample(scale_factor=2.0), block(a, b))
                                  for a, b in zip(chs[:0:-1], chs[-2::-1])])
        self.out = nn.Sequential(nn.Conv2d(chs[0], 3, 7, padding=3), nn.Tanh())

    def forward(self, source: Tensor, flow: Tensor, occlusion: Tensor) -> Tensor:
        h = self.down(self.first(source))  # (B, C, S / 2^n, S / 2^n)
        h = warp(h, flow) * F.interpolate(occlusion, size=h.shape[2:], mode="bilinear", align_corners=False)
        return self.out(self.up(self.blocks(h)))


class Motion(FaceSwapMethod):
    """Reads ``image``, ``landmarks``, ``identity`` of a many-identity batch (frames of one identity are animated
    from each other), or ``_A``/``_B`` of a pair batch. ``swap(target, source, shots=K)``: `source` holds K crops per
    target (K in all: shared by every target), with their landmarks; without `shots`, one source crop (or one per
    target)."""

    trainable = True
    identity_specific = False
    tiny = {"width": 8, "max_width": 16, "n_blocks": 1, "motion_width": 8, "motion_max_width": 16,
            "motion_depth": 2, "lr": 1e-3}
    fit_loss = "train/loss"  # loss_rec + loss_perc + loss_face

    def __init__(self, image_size: int = 64, width: int = 16, max_width: int = 128, n_down: int = 2,
                 n_blocks: int = 3, motion_width: int = 16, motion_max_width: int = 64, motion_depth: int = 2,
                 motion_scale: float = 0.25, kp_variance: float = 0.01, ridge: float = 0.05, num_scales: int = 3,
                 lambda_rec: float = 10.0, lambda_vgg: float = 10.0, lambda_face: float = 1.0, lr: float = 2e-4,
                 beta1: float = 0.5, beta2: float = 0.999, paste_blur: float = 2.0, shape_momentum: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.motion_size = round(image_size * motion_scale)
        for name, size, n in (("image_size", image_size, n_down),
                              ("motion_scale * image_size", self.motion_size, motion_depth)):
            if size % 2**n or size < 2**n:
                raise ValueError(f"Motion: {name} = {size} must be a multiple of 2^{n} (its halvings)")
        self.dense = DenseMotion(motion_width, motion_max_width, motion_depth)
        self.netG = Generator(width, max_width, n_down, n_blocks)
        # The population's mean face shape (crop pixels): the reference the target's landmarks are moved from.
        self.register_buffer("mean_landmarks", torch.zeros(68, 2))
        self.register_buffer("shape_seen", torch.zeros((), dtype=torch.bool))
        self.__dict__["content"] = None  # built when training starts; out of the state dict

    # ------------------------------------------------------------------------------------------- the maths

    def animate(self, source: Tensor, source_landmarks: Tensor, driver_landmarks: Tensor) -> tuple[Tensor, dict]:
        """Draw source (B, 3, S, S) with its landmarks (B, 68, 2) moved to driver_landmarks (B, 68, 2) (pixels).
        Returns the image (B, 3, S, S) and the motion (``flow``, ``occlusion``, ``masks``, ``grids``)."""
        S, h = source.shape[-1], self.motion_size
        drv, src = to_grid_coords(driver_landmarks, S), to_grid_coords(source_landmarks, S)
        grids = sparse_motions(drv, src, h, h, self.hparams.ridge)  # (B, M, h, h, 2)
        var = self.hparams.kp_variance
        heat = heatmaps(keypoints(drv), h, h, var) - heatmaps(keypoints(src), h, h, var)  # (B, M - 1, h, h)
        heat = torch.cat([torch.zeros_like(heat[:, :1]), heat], 1)  # the background has no keypoint
        small = source if S == h else F.interpolate(source, size=(h, h), mode="bilinear", antialias=True)
        flow, occlusion, masks = self.dense(small, grids, heat)
        out = self.netG(source, flow, occlusion)
        return out, {"flow": flow, "occlusion": occlusion, "masks": masks, "grids": grids}

    def paste(self, drawn: Tensor, target: Tensor, moved: Tensor, target_landmarks: Tensor) -> Tensor:
        """The drawn face feathered onto the target through the union of both face masks."""
        size, blur = target.shape[-2:], self.hparams.paste_blur
        mask = torch.maximum(face_hull_mask(moved, size, blur=blur), face_hull_mask(target_landmarks, size, blur=blur))
        return torch.lerp(target, drawn, mask)

    # ------------------------------------------------------------------------------------------- swapping

    def swap(self, target, source=None, *, target_landmarks=None, source_landmarks=None, direction=None,
             shots: int | None = None):
        """:meth:`FaceSwapMethod.swap` with `shots` = K source crops per target (see the class docstring)."""
        if shots is None or source is None:
            return super().swap(target, source, target_landmarks=target_landmarks,
                                source_landmarks=source_landmarks, direction=direction)
        return self.swap_from_shots(target, source, shots, lambda src, lms: (src, lms),
                                    target_landmarks=target_landmarks, source_landmarks=source_landmarks)

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        if target_landmarks is None:
            raise ValueError("Motion.swap needs target_landmarks (B, 68, 2): the driving pose and expression")
        B = len(target)
        if source is not None:
            if source_landmarks is None:
                raise ValueError("Motion.swap needs source_landmarks (B, 68, 2) with the source crops")
            shots, shot_lms = source[:, None], source_landmarks[:, None]  # (B, 1, ...)
        elif "given" in self.__dict__:
            shots, shot_lms = self.__dict__["given"]
        else:
            raise ValueError("Motion.swap needs source crops: the photo(s) of the identity to animate")
        if len(shots) not in (1, B):
            raise ValueError(f"{len(shots)} source sets for {B} targets (give one, or one per target)")
        shots, shot_lms = shots.expand(B, *shots.shape[1:]), shot_lms.expand(B, *shot_lms.shape[1:])
        # The driving landmarks on the source's face shape (mean of its shots), from the population's mean shape:
        # one driving frame says nothing of its own person's shape.
        reference = self.mean_landmarks if self.shape_seen else target_landmarks.mean(0)
        moved = retarget_landmarks(target_landmarks, reference, shot_lms.mean(1))
        i, k = torch.arange(B, device=target.device), best_shot(moved, shot_lms)
        drawn, _ = self.animate(shots[i, k], shot_lms[i, k], moved)
        return self.paste(drawn, target, moved, target_landmarks)

    # ------------------------------------------------------------------------------------------- training

    @staticmethod
    def partners(identity: Tensor) -> Tensor:
        """For each frame (identities (N,)), the index of the next frame of its identity in the batch (cyclically;
        a run of two gives both directions), or -1 for an identity seen once."""
        out = torch.full_like(identity, -1)
        for u in identity.unique().tolist():
            idx = (identity == u).nonzero()[:, 0]
            if len(idx) > 1:
                out[idx] = idx.roll(-1)
        return out

    def pyramid_loss(self, fake: Tensor, real: Tensor, loss) -> Tensor:
        """Sum of loss(fake, real) over the image pyramid (full size, 1/2, 1/4, ...: num_scales levels)."""
        total = loss(fake, real)
        for _ in range(1, self.hparams.num_scales):
            fake, real = (F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True) for x in (fake, real))
            total = total + loss(fake, real)
        return total

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        hp = self.hparams
        images, lms = FewShot.pooled(batch, IMAGE), FewShot.pooled(batch, LANDMARKS)  # (N, 3, S, S), (N, 68, 2)
        update_mean_shape(self, self.mean_landmarks, self.shape_seen, lms, hp.shape_momentum)
        src = self.partners(FewShot.pooled(batch, IDENTITY))
        drv = (src >= 0).nonzero()[:, 0]
        if len(drv) == 0:
            raise ValueError("Motion: no identity has two frames in this batch; training animates frames of one "
                             "identity from each other (data.mode=many with data.group_size=2, or pair batches)")
        src = src[drv]
        fake, _ = self.animate(images[src], lms[src], lms[drv])
        real = images[drv]
        face, vgg = self.content
        losses = {"loss_rec": self.pyramid_loss(fake, real, F.l1_loss) * hp.lambda_rec,
                  "loss_face": face(fake, real, lms[drv]) * hp.lambda_face}
        if vgg is not None:
            losses["loss_perc"] = self.pyramid_loss(fake, real, vgg) * hp.lambda_vgg
        total = sum(losses.values())
        self.log_losses(losses, total, len(drv))
        return total

    def configure_optimizers(self):
        hp = self.hparams
        return self.adam(self.parameters(), lr=hp.lr, betas=(hp.beta1, hp.beta2))

    def on_fit_start(self) -> None:
        # Before the first batch, so that a missing face network stops the run at once with the file's name.
        if self.content is None:
            from faceswaplab.losses import FacePerceptualLoss, vgg_loss_if_cached

            vgg = vgg_loss_if_cached("Motion: VGG19's weights are not available, so loss_perc is left out",
                                     self.device) if self.hparams.lambda_vgg > 0 else None
            self.__dict__["content"] = (FacePerceptualLoss().to(self.device), vgg)
