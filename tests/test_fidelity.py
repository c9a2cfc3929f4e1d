"""pix2pix, pix2pixHD and CycleGAN behave as their reference implementations: each test states the behaviour."""

import inspect

import hydra
import lightning as L
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT
from fidelity_helpers import cfg_for, faces, fit
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from faceswaplab.faces.backends import MissingWeightsError
from faceswaplab.losses import GANLoss, VGGLoss, feature_matching_loss
from faceswaplab.nets import LocalEnhancer, ResnetGenerator, UnetGenerator
from faceswaplab.nets.vgg import VGG19Features

RANDOM_VGG = "method.perceptual.pretrained=false"


# ------------------------------------------------------------------------------------------------ pix2pix


@pytest.mark.parametrize("num_downs, expected", [(8, 3), (7, 2), (6, 1), (5, 0)])
def test_unet_dropout_follows_the_reference_rule(num_downs, expected):
    """The reference U-Net puts dropout after the num_downs - 5 intermediate 8w blocks (3 at 256 px)."""
    g = UnetGenerator(num_downs=num_downs, width=4)
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == expected


def _trained_pix2pix(*overrides):
    L.seed_everything(0)
    method, _ = fit(cfg_for("pix2pix", *overrides, size=64))  # 64 px: one dropout layer (none below)
    return method.eval()


def test_pix2pix_swap_samples_as_the_paper_and_a_seed_reproduces_it():
    method = _trained_pix2pix("method.swap_seed=null")
    images, landmarks = faces(size=64)
    running = method.netG_B.ups[1][2].running_mean.clone()
    with torch.no_grad():
        torch.manual_seed(1)
        a = method.swap(images, target_landmarks=landmarks)
        b = method.swap(images, target_landmarks=landmarks)
        torch.manual_seed(1)
        again = method.swap(images, target_landmarks=landmarks)
    assert (a - b).abs().mean() > 1e-3  # dropout on: two calls are two samples
    torch.testing.assert_close(a, again)  # the same seed, the same sample
    torch.testing.assert_close(method.netG_B.ups[1][2].running_mean, running)  # nothing learnt while swapping
    assert not method.netG_B.training  # modes restored

    # With a seed, each image has its own statistics and noise: its swap does not depend on the rest of the batch.
    method.hparams.swap_seed = 5
    with torch.no_grad():
        whole = method.swap(images, target_landmarks=landmarks)
        alone = method.swap(images[1:2], target_landmarks=landmarks[1:2])
    torch.testing.assert_close(whole[1:2], alone)


def test_pix2pix_eval_mode_is_deterministic_and_differs_from_sampling():
    method = _trained_pix2pix()
    images, landmarks = faces(size=64)
    with torch.no_grad():
        sampled = method.swap(images, target_landmarks=landmarks)
        torch.testing.assert_close(sampled, method.swap(images, target_landmarks=landmarks))  # swap_seed=0
        method.hparams.eval_mode = True
        first = method.swap(images, target_landmarks=landmarks)
        torch.manual_seed(3)
        torch.testing.assert_close(first, method.swap(images, target_landmarks=landmarks))
    assert (first - sampled).abs().mean() > 1e-3


class StepOrder(Callback):
    """Records which optimiser steps first in each batch (by wrapping the real optimisers' step)."""

    def __init__(self):
        self.order = []

    def on_train_start(self, trainer, pl_module):
        for name, opt in zip(("G", "D"), trainer.optimizers):
            step = opt.step

            def recorded(*args, _step=step, _name=name, **kwargs):
                self.order.append(_name)
                return _step(*args, **kwargs)

            opt.step = recorded


def test_pix2pix_updates_the_discriminator_first():
    rec = StepOrder()
    fit(cfg_for("pix2pix", "data.batch_size=2"), batches=2, callbacks=[rec])
    assert rec.order == ["D", "G", "D", "G"]


class LR(Callback):
    def __init__(self):
        self.lrs = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.lrs.append([o.param_groups[0]["lr"] for o in trainer.optimizers])


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_learning_rate_is_constant_then_linear_to_zero_over_the_halves(method):
    """The reference rule 1 - max(0, e + 1 - n) / (n_decay + 1), with n = n_decay = max_epochs / 2 by default."""
    rec = LR()
    fit(cfg_for(method, "method.lr=1e-3"), epochs=4, callbacks=[rec])
    expected = [1e-3 * (1 - max(0, e + 1 - 2) / 3) for e in range(4)]
    assert [lr[0] for lr in rec.lrs] == pytest.approx(expected)
    assert [lr[1] for lr in rec.lrs] == pytest.approx(expected)


# ------------------------------------------------------------------------------------------------ pix2pixHD


def _outputs(gen, scales=2, layers=4, n=2):
    return [(torch.randn(n, 1, 5, 5, generator=gen), [torch.randn(n, 3, 6, 6, generator=gen) for _ in range(layers)])
            for _ in range(scales)]


def test_pix2pixhd_losses_equal_the_reference_formulas():
    gen = torch.Generator().manual_seed(0)
    fake, real = _outputs(gen), _outputs(gen)
    # pix2pixHD: loss_G_GAN_Feat = sum_i sum_j (1 / num_D) * (4 / (n_layers_D + 1)) * L1(fake_ij, real_ij)
    n_layers_d, num_d = 3, 2
    expected = sum((1.0 / num_d) * (4.0 / (n_layers_d + 1)) * (f - r).abs().mean()
                   for (_, ff), (_, rf) in zip(fake, real) for f, r in zip(ff, rf))
    torch.testing.assert_close(feature_matching_loss(fake, real), expected)
    # Its LSGAN loss sums the scales' mean squared errors.
    torch.testing.assert_close(GANLoss("lsgan")(fake, True), sum(((p - 1) ** 2).mean() for p, _ in fake))


def test_vgg_loss_weights_the_five_maps_as_pix2pixhd():
    torch.manual_seed(0)
    loss = VGGLoss(pretrained=False)
    x, y = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    fx, fy = loss.network(x), loss.network(y)
    assert [f.shape[1] for f in fx] == [64, 128, 256, 512, 512]
    expected = sum(w * (a - b).abs().mean() for w, a, b in zip([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1], fx, fy))
    torch.testing.assert_close(loss(x, y), expected)
    assert not any(p.requires_grad for p in loss.parameters())


def test_vgg_weights_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"vgg19-dcbb9e9d\.pth not found at .*hub/checkpoints"):
        VGG19Features(pretrained=True)
    # Training with the perceptual loss stops before the first batch, naming the file.
    with pytest.raises(MissingWeightsError, match="vgg19-dcbb9e9d.pth"):
        fit(cfg_for("pix2pix", "method.lambda_vgg=10"))


def test_pix2pixhd_trains_with_the_perceptual_loss_through_the_config_hook(tmp_path):
    L.seed_everything(0)
    method, _ = fit(cfg_for("pix2pix", "method.lambda_vgg=10", "method.lambda_feat=10", "method.num_D=2",
                            "method.generator=global", "method.norm=instance", RANDOM_VGG), batches=2)
    assert isinstance(method.criterion_vgg, VGGLoss)
    assert not any(k.startswith("criterion_vgg") for k in method.state_dict())  # not in the checkpoint
    assert float(method.trainer.callback_metrics["train/loss_G_VGG_A"]) > 0


def test_pix2pixhd_discriminator_pads_by_two():
    """pix2pixHD's NLayerDiscriminator pads its 4x4 convolutions by ceil(3 / 2) = 2: 64 -> 33 -> 17 -> 9 -> 10 -> 11."""
    from faceswaplab.nets import PatchDiscriminator

    assert PatchDiscriminator(width=4, padding=2)(torch.zeros(1, 3, 64, 64)).shape[-1] == 11
    assert PatchDiscriminator(width=4)(torch.zeros(1, 3, 64, 64)).shape[-1] == 6


def test_global_generator_downsamples_four_times():
    g = ResnetGenerator(3, 3, width=4, n_blocks=1, n_downsampling=4)
    trunk = torch.nn.Sequential(*list(g.model)[: 4 + 3 * 4])  # c7s1 then four stride-2 convs
    assert trunk(torch.zeros(1, 3, 64, 64)).shape == (1, 64, 4, 4)
    assert g(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_local_enhancer_keeps_the_global_generator_fixed_during_warm_up():
    g = LocalEnhancer(1, 3, width=4, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1)
    assert g(torch.zeros(2, 1, 32, 32)).shape == (2, 3, 32, 32)
    L.seed_everything(0)
    cfg = cfg_for("pix2pix", "method.generator=local", "method.norm=instance", "method.n_downsample_global=2",
                  "method.gen_blocks=1", "method.niter_fix_global=1")
    method = instantiate(cfg.method)
    before = {k: v.clone() for k, v in method.netG_A.state_dict().items()}

    class Snapshot(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 0:
                self.after_warmup = {k: v.clone() for k, v in pl_module.netG_A.state_dict().items()}

    snap = Snapshot()
    dm = instantiate(cfg.data)
    L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, limit_train_batches=1, callbacks=[snap]).fit(method, dm)
    changed = lambda a, b, prefix: any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))  # noqa: E731
    assert not changed(before, snap.after_warmup, "global_net")
    assert changed(before, snap.after_warmup, "local_up")
    assert changed(snap.after_warmup, method.netG_A.state_dict(), "global_net")


def test_local_enhancer_starts_from_a_global_run(tmp_path):
    L.seed_everything(0)
    glob = instantiate(cfg_for("pix2pix", "method.generator=global", "method.gen_width=8", "method.norm=instance",
                               "method.n_downsample_global=2", "method.gen_blocks=1", "method.dropout=0",
                               size=16).method)
    ckpt = tmp_path / "global.ckpt"
    torch.save({"state_dict": glob.state_dict()}, ckpt)
    local = instantiate(cfg_for("pix2pix", "method.generator=local", "method.gen_width=4", "method.norm=instance",
                                "method.n_downsample_global=2", "method.gen_blocks=1").method)
    local.load_global(str(ckpt))
    x = torch.randn(1, 1, 16, 16)
    head = torch.nn.Sequential(*list(glob.netG_A.model)[: len(local.netG_A.global_net)])
    torch.testing.assert_close(local.netG_A.global_net(x), head(x))
    wrong = instantiate(cfg_for("pix2pix", "method.generator=local", "method.gen_width=8", "method.norm=instance",
                                "method.n_downsample_global=2", "method.gen_blocks=1").method)
    with pytest.raises(ValueError, match="gen_width 16"):
        wrong.load_global(str(ckpt))


# ------------------------------------------------------------------------------------------------ CycleGAN


def test_cyclegan_resize_crop_flip_as_the_reference():
    """Resize to 286/256 of the size, a random crop back, a mirror half of the time."""
    from faceswaplab.methods.cyclegan import resize_crop_flip

    x = torch.rand(64, 3, 32, 32) * 2 - 1
    out = resize_crop_flip(x, 286 / 256)
    big = F.interpolate(x, size=(36, 36), mode="bicubic", align_corners=False).clamp(-1, 1)
    flips, places = 0, set()
    for i in range(len(x)):
        windows = big[i].unfold(1, 32, 1).unfold(2, 32, 1)  # (3, 5, 5, 32, 32): every 32x32 crop
        plain = (windows - out[i][:, None, None]).abs().amax((0, 3, 4))
        mirrored = (windows - out[i].flip(-1)[:, None, None]).abs().amax((0, 3, 4))
        best = torch.minimum(plain, mirrored)
        assert best.min() < 1e-6
        flips += bool(mirrored.min() < plain.min())
        places.add(int(best.argmin()))
    assert 20 < flips < 44 and len(places) > 10


def test_cyclegan_trains_with_the_augmentation():
    L.seed_everything(0)
    method, _ = fit(cfg_for("cyclegan", "method.augment=true"))
    assert method.hparams.augment and float(method.trainer.callback_metrics["train/loss_cycle_A"]) > 0


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_cyclegan_one_pass_for_two_inputs_equals_two_passes(norm):
    """The step runs G on (a, b) and D on (real, fake) in one call; that must not change what a net computes:
    instance norm keeps samples apart, and under batch norm (which would mix them) the calls stay separate."""
    from faceswaplab.methods.cyclegan import CycleGAN

    torch.manual_seed(0)
    method = CycleGAN(gen_width=8, gen_blocks=2, disc_width=8, norm=norm).train()
    x, y = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    for net in (method.netG_A, method.netD_A):
        together = method.both(net, x, y)
        for got, alone in zip(together, (net(x), net(y))):
            torch.testing.assert_close(got, alone, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------ all methods


@pytest.mark.parametrize("config", sorted((ROOT / "conf" / "method").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_method_builds_from_its_size_alone(config):
    """The papers' loss weights are the signatures' defaults; a method without a crop size takes no argument."""
    cls = hydra.utils.get_class(OmegaConf.load(config)._target_)
    sized = "image_size" in inspect.signature(cls.__init__).parameters
    method = cls(image_size=64) if sized else cls()
    assert method.hparams.get("image_size", 64) == 64
