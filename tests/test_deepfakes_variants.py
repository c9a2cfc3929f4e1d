"""DeepFakes variants as practitioners run them: DeepFaceLab's LIAE, the loss presets of faceswap and DeepFaceLab,
the training schedule, each against the reference behaviour it copies."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from fidelity_helpers import cfg_for, fit
from hydra.utils import instantiate

LIAE = ["method.arch=liae", "method.loss=deepfacelab", "method.mse_weight=10", "method.ssim_weight=10",
        "method.eyes_mouth_weight=300", "method.mask_weight=10"]


def test_liae_swap_contract_and_checkpoint_round_trip(tmp_path):
    """Both directions give images of the target's shape in [-1, 1]; a checkpoint rebuilds the same swaps."""
    from faceswaplab.methods.base import load_method

    L.seed_everything(0)
    method, dm = fit(cfg_for("deepfakes", *LIAE), epochs=2)
    assert method.iterations == 2 and not hasattr(method, "decoders")
    assert float(method.trainer.callback_metrics["train/loss_eyes_mouth_A"]) > 0
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    ckpt = tmp_path / "liae.ckpt"
    method.trainer.save_checkpoint(ckpt)
    loaded = load_method(ckpt)
    assert loaded.hparams.arch == "liae" and loaded.iterations == 2
    method.eval()
    for direction, side in (("AtoB", "A"), ("BtoA", "B")):
        target, landmarks = batch[f"image_{side}"], batch[f"landmarks_{side}"]
        with torch.no_grad():
            out = method.swap(target, target_landmarks=landmarks, direction=direction)
            again = loaded.swap(target, target_landmarks=landmarks, direction=direction)
        assert out.shape == target.shape and -1 <= out.min() and out.max() <= 1
        assert (out - target).abs().mean() > 1e-3
        torch.testing.assert_close(again, out)


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


@pytest.mark.parametrize("arch", ["df", "liae"])
def test_the_training_steps_one_encoder_pass_for_both_sides_equals_one_per_side(arch):
    """The step encodes A's and B's faces in one call of the shared encoder: each side's output must be what
    ``decode`` gives for that side alone (the encoder has no batch statistics)."""
    from faceswaplab.methods.deepfakes import DeepFakes

    torch.manual_seed(0)
    method = DeepFakes(32, arch=arch, enc_width=4, latent=8, dense_channels=8, code_channels=8, dec_width=8).train()
    images = {"A": torch.rand(3, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    together = method.decode_sides(images)
    for side in "AB":
        for got, alone in zip(together[side], method.decode(images[side], side)):
            assert got.shape[0] == images[side].shape[0]
            torch.testing.assert_close(got, alone, atol=1e-5, rtol=1e-5)


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
