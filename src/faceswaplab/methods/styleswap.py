"""Face swapping as style transfer on a pretrained network's features (Korshunova et al. 2017, "Fast Face-swap
Using Convolutional Neural Networks", ICCV).

One feed-forward network per identity redraws any face in that identity's "style": trained on the faces of the
other identity as content images and on photos of its own identity as the style set, it keeps the content's pose,
expression and lighting in the feature space of a frozen network while its local feature patches are pulled to
those of the identity's photos. Here both identities of a pair data module get one (``generators["B"]`` draws B
from A's faces, ``generators["A"]`` the reverse), as the other identity-specific methods train both directions.

The style set of an identity is a rolling bank of its last ``style_bank`` training photos (with landmarks, kept in
the checkpoint); for each content image the ``n_best`` of them closest in pose (landmark distance of the aligned
crops) are its style images, as the paper picks N_best = 16 photos of similar pose per input.

Code names -> paper names (section 3.2; per generator X in A, B, x a face of the other identity, x_hat = G_X(x)):
    generators[X]    the transformation network (multi-scale, :class:`faceswaplab.nets.multiscale.MultiScaleGenerator`)
    loss_content_X   L_content = 1/|Phi_l(x)| ||Phi_l(x_hat) - Phi_l(x)||^2 (content layer(s) of the feature net)
    loss_style_X     L_style, the patch loss of :func:`faceswaplab.losses.style.patch_style_loss` (summed over the
                     style layers) against the N_best style images of identity X
    loss_light_X     L_light = ||Gamma(x_hat) - Gamma(x)||^2; Gamma is the paper's lighting network, here the
                     stand-in :func:`faceswaplab.losses.style.lighting_map` (its weights were never published)
    loss_tv_X        L_TV, total variation of x_hat
    loss_G_X         the weighted sum, lambda_content L_content + lambda_style L_style + lambda_light L_light
                     + lambda_tv L_TV (the paper: L_content + alpha L_style + beta L_light + gamma L_TV)

The feature network (``feature_net``) is VGG19 with torchvision's ImageNet weights (the paper's), or dlib's face
ResNet (``face``) where VGG19's weights cannot be had; ``auto`` picks VGG19 when its weights are in the cache, and
the choice made is recorded in the run's hyperparameters (``feature_net`` in the checkpoint and hparams.yaml).
The content, style and TV weights are the paper's, set for its VGG19; with the face network they are a start, not a
tuned setting. The lighting weight is ours, for the stand-in (the paper's beta is for its own network's features).
Record of a run: experiments/styleswap.md.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor

from faceswaplab.data.schema import IMAGE, LANDMARKS, SIDES, key
from faceswaplab.faces.masks import face_hull_mask
from faceswaplab.losses.style import (CONTENT_LAYERS, STYLE_LAYERS, StyleFeatures, lighting_map, patch_style_loss,
                                      resolve_feature_net, tv_loss)
from faceswaplab.methods.base import FaceSwapMethod, direction_sides
from faceswaplab.nets.multiscale import MultiScaleGenerator

log = logging.getLogger(__name__)


class StyleSwap(FaceSwapMethod):
    """One multi-scale generator per identity, trained with content, patch-style, lighting and TV losses.

    Reads ``image_X`` and ``landmarks_X`` for X in A, B. ``swap(target, direction="AtoB")`` redraws the A face
    `target` with B's generator; with ``paste`` and the target's landmarks the drawn face is feathered onto the
    target through its face mask (as the paper's pipeline blends the network's output back into the image), else
    the whole drawn crop is returned. ``source`` is ignored.
    """

    identity_specific = True
    tiny = {"width": 4, "num_scales": 3, "n_best": 2, "style_bank": 8, "lr": 1e-2}
    fit_loss = "train/loss"

    def __init__(
        self,
        image_size: int,
        feature_net: str = "auto",
        num_scales: int = 5,
        width: int = 32,
        lambda_content: float = 1.0,
        lambda_style: float = 120.0,
        lambda_light: float = 1.0,
        lambda_tv: float = 0.3,
        patch_size: int = 3,
        style_search: str = "position",
        n_best: int = 16,
        style_bank: int = 64,
        light_size: int = 8,
        paste: bool = True,
        paste_blur: float = 2.0,
        lr: float = 1e-3,
        beta1: float = 0.9,
    ):
        super().__init__()
        if image_size % 2 ** (num_scales - 1):
            raise ValueError(f"method.num_scales: image_size {image_size} is not divisible by 2^{num_scales - 1}")
        if style_search not in ("position", "all"):
            raise ValueError(f"method.style_search: 'position' or 'all', got {style_search!r}")
        if not 1 <= n_best <= style_bank:
            raise ValueError(f"method.n_best: between 1 and style_bank ({style_bank}), got {n_best}")
        feature_net = resolve_feature_net(feature_net)  # recorded resolved: the run says which network it used
        self.save_hyperparameters()
        self.generators = torch.nn.ModuleDict({x: MultiScaleGenerator(num_scales, width) for x in SIDES})
        for x in SIDES:  # the style set of identity X: its last `style_bank` training photos
            self.register_buffer(f"bank_images_{x}", torch.zeros(style_bank, 3, image_size, image_size))
            self.register_buffer(f"bank_landmarks_{x}", torch.zeros(style_bank, 68, 2))
            self.register_buffer(f"bank_count_{x}", torch.zeros((), dtype=torch.long))
        # Built when training starts, kept out of the state dict: swapping never needs the feature network.
        self.__dict__["features"] = None

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        _, s = direction_sides(direction or "AtoB")
        drawn = self.generators[s](target)  # (B, 3, S, S)
        if not self.hparams.paste or target_landmarks is None:
            return drawn
        mask = face_hull_mask(target_landmarks, target.shape[-2:], blur=self.hparams.paste_blur)  # (B, 1, S, S)
        return mask * drawn + (1 - mask) * target

    def on_fit_start(self) -> None:
        # Before the first batch, so missing VGG19 weights stop the run at once with the file's name.
        if self.features is None:
            self.__dict__["features"] = StyleFeatures(self.hparams.feature_net).to(self.device)
            log.info("feature network: %s", self.hparams.feature_net)

    def push_style(self, side: str, images: Tensor, landmarks: Tensor) -> None:
        """Add a batch of identity `side`'s photos to its style bank (oldest replaced first)."""
        bank, lms, count = (getattr(self, f"bank_{n}_{side}") for n in ("images", "landmarks", "count"))
        slots = (count + torch.arange(len(images), device=images.device)) % len(bank)
        bank[slots], lms[slots] = images.detach(), landmarks.detach().to(lms)
        count += len(images)

    def style_images(self, side: str, landmarks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per content face, the ``n_best`` style photos of `side` closest in pose.

        Returns (images (U, 3, S, S), their landmarks (U, 68, 2), index (B, n) into them).
        """
        valid = int(min(getattr(self, f"bank_count_{side}"), len(getattr(self, f"bank_images_{side}"))))
        bank_lms = getattr(self, f"bank_landmarks_{side}")[:valid]
        dist = ((landmarks[:, None] - bank_lms[None]) ** 2).sum((2, 3))  # (B, valid)
        nearest = dist.topk(min(self.hparams.n_best, valid), dim=1, largest=False).indices  # (B, n)
        used, index = nearest.unique(return_inverse=True)  # each photo through the network once
        return getattr(self, f"bank_images_{side}")[used], bank_lms[used], index

    def generator_losses(self, x: str, content: Tensor, content_lms: Tensor) -> dict[str, Tensor]:
        """The losses of generator `x` drawing identity x from `content` faces (B, 3, S, S)."""
        hp = self.hparams
        out = self.generators[x](content)
        f_out = self.features(out, content_lms)
        with torch.no_grad():
            f_content = self.features(content, content_lms)
            images, lms, index = self.style_images(x, content_lms)
            f_style = self.features(images, lms)
        net = hp.feature_net
        terms = {
            "loss_content": sum(F.mse_loss(f_out[n], f_content[n]) for n in CONTENT_LAYERS[net]),
            "loss_style": sum(patch_style_loss(f_out[n], f_style[n][index], hp.patch_size, hp.style_search)
                              for n in STYLE_LAYERS[net]),
            "loss_light": F.mse_loss(lighting_map(out, hp.light_size), lighting_map(content, hp.light_size)),
            "loss_tv": tv_loss(out),
        }
        losses = {f"{k}_{x}": v for k, v in terms.items()}
        losses[f"loss_G_{x}"] = sum(hp[f"lambda_{k[5:]}"] * v for k, v in terms.items())
        return losses

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        if self.features is None:
            self.on_fit_start()
        for x in SIDES:
            self.push_style(x, batch[key(IMAGE, x)], batch[key(LANDMARKS, x)])
        losses: dict[str, Tensor] = {}
        for x in SIDES:  # generator x draws identity x on the other identity's faces
            t, _ = direction_sides("AtoB" if x == "B" else "BtoA")
            losses.update(self.generator_losses(x, batch[key(IMAGE, t)], batch[key(LANDMARKS, t)]))
        loss = losses["loss_G_A"] + losses["loss_G_B"]
        n = batch[key(IMAGE, "A")].shape[0]
        self.log_losses(losses, loss, n)
        return loss

    def configure_optimizers(self):
        return self.adam(self.generators.parameters(), lr=self.hparams.lr, betas=(self.hparams.beta1, 0.999))
