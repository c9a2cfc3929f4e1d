"""A template for a new method: copy it to ``methods/<name>.py``, add ``conf/method/<name>.yaml``, done.

The yaml is one line plus your settings (the file name is the CLI value, ``method=<name>``)::

    _target_: faceswaplab.methods.<name>.<Class>
    image_size: ${data.image_size}
    width: 32
    lr: 2.0e-4

From then on ``python -m faceswaplab.train method=<name>`` trains it, ``faceswaplab.load(run)`` and
``python -m faceswaplab.swap checkpoint=<run>`` swap with it, the benchmark takes it as a row
(``+methods.<name>.train=[method=<name>]``), and ``tests/test_method_contract.py`` checks it: it builds from its
config and records its arguments, trains and lowers ``fit_loss``, reloads to the same swaps, swaps tensors, numpy
and PIL images, resumes exactly, runs under DDP and gets a benchmark row. Nothing else needs editing.

What this skeleton does (so that it runs as it is): a shared encoder and one decoder per identity, trained to
redraw each identity's faces; the swap decodes a target with the other identity's decoder (a small DeepFakes).
Replace the networks and the losses with yours. Loss names follow the reference CycleGAN/pix2pix code
(``loss_<what>_<side>``); map them to the paper's names here:

    loss_rec_X   L1 between decoder_X(encoder(x)) and x inside the face mask   (the paper's reconstruction loss)
"""

from __future__ import annotations

from torch import Tensor, nn

from faceswaplab.data.schema import IMAGE, MASK, SIDES, key
from faceswaplab.losses import masked_l1
from faceswaplab.methods.base import FaceSwapMethod, direction_sides


class TemplateMethod(FaceSwapMethod):
    """Shared encoder, decoder_A, decoder_B. Reads ``image_X`` and ``mask_X`` for X in A, B (see
    :mod:`faceswaplab.data.schema`); ``swap(target, direction="AtoB")`` draws an A face as B; ``source`` is ignored.
    """

    trainable = True  # False: nothing to optimise (train still writes a loadable checkpoint)
    identity_specific = True  # trained on identities A and B; False: any source onto any target
    tiny = {"width": 8, "lr": 2e-3}  # a model that trains a few steps in seconds (contract tests, smoke runs)
    fit_loss = "train/loss_rec_A"  # must fall when fitting a handful of faces

    def __init__(self, image_size: int = 64, width: int = 32, lr: float = 2e-4):
        super().__init__()
        self.save_hyperparameters()  # the checkpoint holds these: load() rebuilds the method from them
        self.encoder = nn.Sequential(  # (B, 3, S, S) -> (B, 2w, S/4, S/4)
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2))
        self.decoders = nn.ModuleDict({x: nn.Sequential(  # (B, 2w, S/4, S/4) -> (B, 3, S, S) in [-1, 1]
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())
            for x in SIDES})

    def swap_tensors(self, target: Tensor, source: Tensor | None = None, *, target_landmarks: Tensor | None = None,
                     source_landmarks: Tensor | None = None, direction: str | None = None) -> Tensor:
        _, to_side = direction_sides(direction or "AtoB")
        return self.decoders[to_side](self.encoder(target))  # (B, 3, S, S)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        losses = {}
        for x in SIDES:
            image, mask = batch[key(IMAGE, x)], batch[key(MASK, x)]
            losses[f"loss_rec_{x}"] = masked_l1(self.decoders[x](self.encoder(image)), image, mask)
        loss = sum(losses.values())
        n = batch[key(IMAGE, "A")].shape[0]
        # Every loss under train/ (the NaN guard, callbacks.FiniteLoss, watches those) and the total.
        self.log_losses(losses, loss, n)
        return loss

    def configure_optimizers(self):
        return self.adam(self.parameters(), lr=self.hparams.lr, betas=(0.5, 0.999))
