import pytest
import torch
from skimage.metrics import structural_similarity
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

from faceswaplab.losses import GANLoss, feature_matching_loss, masked_l1, ssim
from faceswaplab.nets import (
    Decoder,
    Encoder,
    MultiscaleDiscriminator,
    PatchDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    init_weights,
)


def _params(m):
    return sum(p.numel() for p in m.parameters())


def test_default_sizes_match_the_papers():
    # Parameter counts of the reference architectures at their default widths.
    assert _params(ResnetGenerator()) == 11_378_179
    assert _params(UnetGenerator()) == 54_413_955
    assert _params(PatchDiscriminator()) == 2_764_737


@pytest.mark.parametrize("size", [32, 64])
def test_generators_keep_shape_and_range(size):
    x = torch.randn(2, 3, size, size)
    for g in (ResnetGenerator(width=8, n_blocks=2), UnetGenerator(num_downs=5, width=8), UnetGenerator(in_channels=1, num_downs=5, width=8)):
        inp = x[:, : g.downs[0][0].in_channels] if isinstance(g, UnetGenerator) else x
        y = g(inp)
        assert y.shape == (2, 3, size, size)
        assert y.abs().max() <= 1.0


def test_patch_discriminator_receptive_field_is_70():
    d = init_weights(PatchDiscriminator(width=4, norm="none"))
    x = torch.zeros(1, 3, 140, 140, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = (x.grad.abs().sum((0, 1, 3)) > 0).nonzero()
    assert rows.max() - rows.min() + 1 == 70


def test_multiscale_discriminator_returns_features_per_scale():
    d = MultiscaleDiscriminator(width=4, num_d=3)
    outs = d(torch.randn(2, 3, 128, 128), features=True)
    assert len(outs) == 3
    assert [o[0].shape[-1] for o in outs] == [14, 6, 2]  # 128, 64 and 32 px inputs
    assert all(len(feats) == 4 for _, feats in outs)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_autoencoder_round_trip_shapes(size):
    enc = Encoder(size, width=8, latent=16, dense_channels=16, code_channels=16)
    dec = Decoder(size, width=8, code_channels=16, mask=True)
    code = enc(torch.randn(2, 3, size, size))
    assert code.shape == (2, 16, 8, 8)
    rgb, mask = dec(code)
    assert rgb.shape == (2, 3, size, size) and mask.shape == (2, 1, size, size)
    assert 0 <= mask.min() and mask.max() <= 1


def test_autoencoder_rejects_bad_size():
    with pytest.raises(ValueError, match="power of two"):
        Encoder(48)


def test_gan_losses():
    pred = torch.randn(2, 1, 6, 6)
    assert torch.allclose(GANLoss("lsgan")(pred, True), ((pred - 1) ** 2).mean())
    assert torch.allclose(GANLoss("lsgan")(pred, False), (pred**2).mean())
    assert torch.allclose(GANLoss("vanilla")(pred, True), F.softplus(-pred).mean(), atol=1e-6)
    assert torch.allclose(GANLoss("hinge")(pred, False), F.relu(1 + pred).mean())
    assert torch.allclose(GANLoss("hinge")(pred, True, for_discriminator=False), -pred.mean())
    multi = [(pred, []), (pred * 2, [])]
    assert torch.allclose(GANLoss("lsgan")(multi, True), ((pred - 1) ** 2).mean() + ((2 * pred - 1) ** 2).mean())  # summed over scales
    with pytest.raises(ValueError):
        GANLoss("wgan")


def test_feature_matching_is_zero_for_identical_and_positive_otherwise():
    d = MultiscaleDiscriminator(width=4, num_d=2)
    x = torch.randn(1, 3, 64, 64)
    assert feature_matching_loss(d(x, True), d(x, True)).item() == 0
    assert feature_matching_loss(d(x + 0.5, True), d(x, True)).item() > 0


def test_ssim_matches_torchmetrics_and_scikit_image():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    ref = structural_similarity_index_measure(y, x, data_range=2.0, gaussian_kernel=True, sigma=1.5, kernel_size=11)
    assert torch.allclose(ssim(x, y, padding="reflect"), ref, atol=1e-5)
    sk = [
        structural_similarity(a.numpy(), b.numpy(), channel_axis=0, data_range=2.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for a, b in zip(x.double(), y.double())
    ]
    assert torch.allclose(ssim(x, y, reduction="none").double(), torch.tensor(sk), atol=1e-5)
    assert torch.allclose(ssim(x, x), torch.tensor(1.0), atol=1e-5)


def test_masked_l1_ignores_pixels_outside_the_mask_and_weights_regions():
    a, b = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    b[..., :2] = 5.0  # error only in the left half
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 2:] = 1
    assert masked_l1(a, b, mask).item() == 0
    assert masked_l1(a, b).item() == pytest.approx(2.5)
    weight = torch.ones(1, 1, 4, 4)
    weight[..., 0] = 3.0  # a priority region inside the erroneous half
    assert masked_l1(a, b, None, weight).item() > masked_l1(a, b).item()
