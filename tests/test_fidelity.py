"""The methods behave as their papers' reference implementations: each test states the reference behaviour."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback

from faceswaplab.config import compose
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.faces.backends import MissingWeightsError
from faceswaplab.losses import GANLoss, VGGLoss, feature_matching_loss
from faceswaplab.nets import LocalEnhancer, ResnetGenerator, UnetGenerator
from faceswaplab.nets.vgg import VGG19Features

TINY = {
    "pix2pix": ["method.gen_width=8", "method.disc_width=8", "method.disc_layers=2", "method.lr=1e-3"],
    "cyclegan": ["method.gen_width=8", "method.gen_blocks=2", "method.disc_width=8"],
    "deepfakes": ["method.enc_width=8", "method.latent=32", "method.dense_channels=32", "method.code_channels=16",
                  "method.dec_width=16", "method.lr=1e-3"],
}
RANDOM_VGG = "method.perceptual.pretrained=false"


def cfg_for(method: str, *overrides: str, size: int = 32):
    return compose("train", [f"method={method}", f"data.image_size={size}", "data.num_workers=0", "data.batch_size=4",
                             "data.A.num_samples=8", "data.augment=null", "~experiment", *TINY[method], *overrides])


def fit(cfg, epochs: int = 1, batches: int = 1, callbacks=()):
    dm, method = instantiate(cfg.data), instantiate(cfg.method)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        limit_train_batches=batches, callbacks=list(callbacks))
    trainer.fit(method, dm)
    return method, dm


def faces(n: int = 3, size: int = 32, identity: int = 0):
    from faceswaplab.images import to_tensor

    samples = [SyntheticFaces(seed=0).sample(identity, i, size=size) for i in range(n)]
    images = to_tensor(torch.stack([torch.as_tensor(s.image) for s in samples]).numpy())
    return images, torch.stack([torch.as_tensor(s.landmarks, dtype=torch.float32) for s in samples])


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


# ------------------------------------------------------------------------------------------------ all methods


@pytest.mark.parametrize("path", ["pix2pix.Pix2Pix", "cyclegan.CycleGAN", "deepfakes.DeepFakes",
                                  "landmark_warp.LandmarkWarp"])
def test_every_method_builds_from_its_size_alone(path):
    """The papers' loss weights are the signatures' defaults; the landmark warp needs no size at all."""
    module, name = path.split(".")
    cls = getattr(__import__(f"faceswaplab.methods.{module}", fromlist=[name]), name)
    method = cls() if name == "LandmarkWarp" else cls(image_size=64)
    assert method.hparams.get("image_size", 64) == 64


# ------------------------------------------------------------------------------------------------ landmark warp


def test_landmark_warp_keeps_the_open_target_mouth():
    import numpy as np
    from scipy.ndimage import binary_erosion

    from faceswaplab.methods.landmark_warp import LandmarkWarp, mouth_interior

    faces_ = SyntheticFaces(seed=0)
    target = faces_.render(0, 128, expression=(1.0, 0, 0, 0), background=(40, 120, 60))  # mouth wide open
    source = faces_.render(1, 128, expression=(0.0, 0, 0, 0), background=(200, 60, 60))  # mouth closed
    inside = binary_erosion(mouth_interior(target.landmarks, (128, 128)) > 0.5, iterations=2)
    assert inside.sum() > 30  # the open mouth is a real region
    swaps = {keep: LandmarkWarp(keep_mouth=keep).swap_image(target.image, source.image, target.landmarks,
                                                            source.landmarks) for keep in (True, False)}
    diff = {k: np.abs(v.astype(int) - target.image)[inside].mean() for k, v in swaps.items()}
    assert diff[True] <= 2 < diff[False], diff  # kept: the target's teeth and tongue; not: stretched source lips


def test_blur_ratio_correction_follows_local_lighting():
    """``src * blur(dst) / blur(src)`` moves a shadow across the face, which a global transfer cannot."""
    import numpy as np

    from faceswaplab.faces import blending

    face = SyntheticFaces(seed=0).render(0, 96).image
    shade = np.linspace(0.45, 1.0, 96, dtype=np.float32)[None, :, None]  # dark on the left, bright on the right
    dst = np.clip(face * shade, 0, 255).astype(np.uint8)
    mask = np.zeros((96, 96), np.float32)
    mask[16:80, 16:80] = 1
    inner = slice(24, 72)
    err = {mode: np.abs(blending.color_transfer(face, dst, mask, mode=mode, blur=15).astype(int)
                        - dst)[inner, inner].mean() for mode in ("blur_ratio", "lab_meanstd")}
    assert err["blur_ratio"] < 0.5 * err["lab_meanstd"], err


# ------------------------------------------------------------------------------------------------ DeepFakes

LIAE = ["method.arch=liae", "method.loss=deepfacelab", "method.mse_weight=10", "method.ssim_weight=10",
        "method.eyes_mouth_weight=300", "method.mask_weight=10"]


def test_liae_swap_contract_and_checkpoint_round_trip(tmp_path):
    from faceswaplab.methods.base import load_method

    L.seed_everything(0)
    cfg = cfg_for("deepfakes", *LIAE)
    dm, method = instantiate(cfg.data), instantiate(cfg.method)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        limit_train_batches=1)
    trainer.fit(method, dm)
    assert method.iterations == 2 and not hasattr(method, "decoders")
    assert float(trainer.callback_metrics["train/loss_eyes_mouth_A"]) > 0
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    method.eval()
    outs = {}
    with torch.no_grad():
        for direction in ("AtoB", "BtoA"):
            t = direction[0]
            out = method.swap(batch[f"image_{t}"], target_landmarks=batch[f"landmarks_{t}"], direction=direction)
            assert out.shape == batch[f"image_{t}"].shape and out.min() >= -1 and out.max() <= 1
            assert (out - batch[f"image_{t}"]).abs().mean() > 1e-3
            outs[direction] = out
    ckpt = tmp_path / "liae.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = load_method(ckpt)
    assert loaded.hparams.arch == "liae" and loaded.iterations == 2
    with torch.no_grad():
        again = loaded.swap(batch["image_B"], target_landmarks=batch["landmarks_B"], direction="BtoA")
    torch.testing.assert_close(again, outs["BtoA"])


def test_liae_codes_follow_deepfacelab():
    """Side A (DeepFaceLab's src) decodes [inter_AB, inter_AB]; side B (dst) [inter_B, inter_AB]."""
    from faceswaplab.nets import LIAE as LIAENet

    net = LIAENet(32, enc_width=4, latent=8, dense_channels=8, code_channels=8, dec_width=8, mask=True)
    x = torch.randn(2, 3, 32, 32)
    h = net.encoder(x)
    ab, b = net.inter_AB(h), net.inter_B(h)
    for side, code in (("A", torch.cat([ab, ab], 1)), ("B", torch.cat([b, ab], 1))):
        rgb, mask = net(x, side)
        torch.testing.assert_close(rgb, net.decoder(code)[0])
    net(x, "A")[0].sum().backward()
    assert all(p.grad is None for p in net.inter_B.parameters())


def _regions(seed=0, size=32):
    g = torch.Generator().manual_seed(seed)
    fake, real = torch.rand(2, 3, size, size, generator=g) * 2 - 1, torch.rand(2, 3, size, size, generator=g) * 2 - 1
    mask = (torch.rand(2, 1, size, size, generator=g) > 0.2).float()
    parts = torch.zeros(2, 2, size, size)
    parts[:, 0, 8:12, 6:26] = 1  # eyes
    parts[:, 1, 20:26, 10:22] = 1  # mouth
    return fake, real, mask, parts


def test_faceswap_loss_preset_equals_its_formula():
    from faceswaplab.losses import reconstruction_terms, ssim_map

    fake, real, mask, parts = _regions()
    terms = reconstruction_terms("faceswap", fake, real, mask, parts, mse_weight=1.0, ssim_weight=1.0,
                                 eye_multiplier=3.0, mouth_multiplier=2.0)
    f, r = (fake + 1) / 2, (real + 1) / 2
    # faceswap: loss *= face; loss += loss * eye * 3; loss += loss * mouth * 2; mean over the pixels
    w = mask
    w = w + w * parts[:, :1] * 3
    w = w + w * parts[:, 1:] * 2
    torch.testing.assert_close(terms["loss_mse"], ((f - r) ** 2 * w).mean())
    dssim = 1 - ssim_map(f, r, data_range=1.0, padding="reflect")
    torch.testing.assert_close(terms["loss_ssim"], (dssim * w).mean())
    assert set(terms) == {"loss_mse", "loss_ssim"}


def test_deepfacelab_loss_preset_equals_its_formula():
    from faceswaplab.losses import reconstruction_terms, ssim

    fake, real, mask, parts = _regions(1, size=64)
    mask = torch.zeros_like(mask)
    mask[:, :, 10:50, 12:52] = 1
    terms = reconstruction_terms("deepfacelab", fake, real, mask, parts, mse_weight=10, ssim_weight=10,
                                 eyes_mouth_weight=300)
    # Its mask: gaussian_blur(mask, 64 // 32): sigma 2, kernel int(2 * 2 * 2) made odd = 9, zero padding; then
    # clipped to 0.5 and doubled.
    g = torch.exp(-torch.arange(-4.0, 5.0) ** 2 / (2 * 2.0**2))
    soft = (F.conv2d(mask, (torch.outer(g, g) / torch.outer(g, g).sum())[None, None], padding=4).clamp(0, 0.5) * 2)
    assert soft[0, 0, 30, 30] == 1 and 0 < soft[0, 0, 9, 30] < 1 and soft[0, 0, 4, 30] == 0  # fades outside
    f, r = (fake + 1) / 2 * soft, (real + 1) / 2 * soft
    em = parts.sum(1, keepdim=True).clamp(0, 1)
    # SAEHD below 256 px: 10 * dssim(window int(res / 11.6)) + 10 * mse + 300 * |target * em - pred * em|
    torch.testing.assert_close(terms["loss_ssim"], 10 * (1 - ssim(f, r, data_range=1.0, window=5)) / 2)
    torch.testing.assert_close(terms["loss_mse"], 10 * ((f - r) ** 2).mean())
    torch.testing.assert_close(terms["loss_eyes_mouth"], 300 * ((fake + 1) / 2 * em - (real + 1) / 2 * em).abs().mean())


def test_learning_rate_dropout_keeps_that_share_of_the_updates():
    L.seed_everything(0)
    cfg = cfg_for("deepfakes", "method.lr_dropout=0.3")
    method, dm = instantiate(cfg.method), instantiate(cfg.data)
    before = torch.cat([p.detach().flatten().clone() for p in method.autoencoder_parameters()])
    L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, limit_train_batches=1).fit(method, dm)
    after = torch.cat([p.detach().flatten() for p in method.autoencoder_parameters()])
    changed = (after != before).float().mean().item()
    assert 0.27 < changed < 0.33, changed


def test_gradient_clipping_bounds_the_global_norm():
    L.seed_everything(0)
    method, _ = fit(cfg_for("deepfakes", "method.grad_clip=0.001"))
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in method.autoencoder_parameters()
                                                 if p.grad is not None]))
    assert norm <= 0.001 * 1.01


def test_random_warp_switches_off_late():
    """After warp_off_step iterations the strength no longer matters: the faces go in unwarped."""
    def weights(strength, off):
        L.seed_everything(0)
        method, _ = fit(cfg_for("deepfakes", f"method.warp_strength={strength}", f"method.warp_off_step={off}"))
        return torch.cat([p.detach().flatten() for p in method.parameters()])

    torch.testing.assert_close(weights(0.02, 0), weights(0.2, 0))
    assert not torch.equal(weights(0.02, "null"), weights(0.2, "null"))
