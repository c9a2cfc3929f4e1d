"""The style-transfer family's own maths: the patch style loss against a direct computation, the generator's
shapes, the style bank and pose selection, and the feature network's choice being recorded."""

import pytest
import torch
import torch.nn.functional as F

from faceswaplab.losses.style import StyleFeatures, lighting_map, patch_style_loss, resolve_feature_net
from faceswaplab.methods.styleswap import StyleSwap
from faceswaplab.nets.multiscale import MultiScaleGenerator


def direct_style_loss(out, style, k, search):
    """Loops over patches: each output patch's nearest style patch by cosine similarity, squared distance / D."""
    B, N, C, H, W = style.shape
    total, count = 0.0, 0
    for b in range(B):
        for y in range(H - k + 1):
            for x in range(W - k + 1):
                p = out[b, :, y:y + k, x:x + k].flatten()
                cands = [style[b, n, :, v:v + k, u:u + k].flatten() for n in range(N)
                         for v in range(H - k + 1) for u in range(W - k + 1)
                         if search == "all" or (v, u) == (y, x)]
                sims = [float(torch.dot(p, c) / (p.norm() * c.norm())) for c in cands]
                best = cands[max(range(len(sims)), key=sims.__getitem__)]
                total += float(((p - best) ** 2).sum()) / p.numel()
                count += 1
    return total / count


@pytest.mark.parametrize("search", ["position", "all"])
@pytest.mark.parametrize("k", [1, 3])
def test_patch_style_loss_equals_a_direct_computation(search, k):
    out = torch.randn(2, 4, 6, 5)
    style = torch.randn(2, 3, 4, 6, 5)
    got = patch_style_loss(out, style, k, search)
    assert got.item() == pytest.approx(direct_style_loss(out, style, k, search), rel=1e-5)


def test_patch_style_loss_is_zero_on_a_style_image_and_pulls_towards_the_match():
    style = torch.randn(1, 3, 8, 7, 7)
    for search in ("position", "all"):
        assert patch_style_loss(style[:, 1], style, 3, search).item() == pytest.approx(0.0, abs=1e-10)
    out = (style[:, 2] + 0.1 * torch.randn(1, 8, 7, 7)).requires_grad_(True)
    before = patch_style_loss(out, style, 3, "all")
    before.backward()
    with torch.no_grad():
        after = patch_style_loss(out - 0.5 * out.grad / out.grad.norm() * before.sqrt(), style, 3, "all")
    assert 0 < after < before


def test_patch_style_loss_position_search_never_borrows_from_elsewhere():
    # Style image 0 holds the output's patch at another position only: "all" finds it, "position" cannot.
    out = torch.zeros(1, 2, 3, 3)
    out[0, 0, 0, 0] = 1.0
    style = torch.zeros(1, 1, 2, 3, 3) + 0.01
    style[0, 0, 0, 2, 2] = 1.0
    assert patch_style_loss(out, style, 1, "all") < patch_style_loss(out, style, 1, "position")


def test_multiscale_generator_shapes_range_and_size_check():
    g = MultiScaleGenerator(num_scales=4, width=4)
    y = g(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
    assert g.to_image.in_channels == 16  # 4 resolutions of 4 filters joined
    with pytest.raises(ValueError, match="not divisible"):
        g(torch.zeros(1, 3, 36, 36))


def test_lighting_map_ignores_skin_tone_but_sees_the_shading_side():
    ramp = torch.linspace(-0.5, 0.5, 32).expand(1, 3, 32, 32)
    assert torch.allclose(lighting_map(ramp), lighting_map(ramp + 0.3), atol=1e-6)  # brighter skin, same light
    assert F.mse_loss(lighting_map(ramp), lighting_map(ramp.flip(-1))) > 0.01  # light from the other side


def test_style_bank_keeps_the_last_photos_and_picks_the_closest_poses():
    m = StyleSwap(16, feature_net="face", num_scales=2, width=2, n_best=2, style_bank=3)
    lms = torch.arange(5.0)[:, None, None].expand(5, 68, 2)  # photo i: every landmark at (i, i)
    imgs = torch.arange(5.0)[:, None, None, None].expand(5, 3, 16, 16)
    m.push_style("B", imgs[:2], lms[:2])
    m.push_style("B", imgs[2:], lms[2:])  # the bank keeps photos 2, 3, 4
    assert sorted(m.bank_images_B[:, 0, 0, 0].tolist()) == [2.0, 3.0, 4.0] and int(m.bank_count_B) == 5
    images, _, index = m.style_images("B", torch.full((2, 68, 2), 4.2))
    chosen = images[index][..., 0, 0, 0]  # (2 content faces, n_best)
    assert sorted(chosen[0].tolist()) == [3.0, 4.0] and torch.equal(chosen[0], chosen[1])


def test_the_feature_network_is_resolved_and_recorded(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: no VGG19 weights
    assert resolve_feature_net("auto") == "face"
    assert StyleSwap(16, num_scales=2, width=2, n_best=1, style_bank=2).hparams.feature_net == "face"
    from faceswaplab.nets.vgg import vgg19_weights_path

    vgg19_weights_path().parent.mkdir(parents=True)
    vgg19_weights_path().touch()
    assert resolve_feature_net("auto") == "vgg19"
    with pytest.raises(ValueError, match="method.feature_net"):
        resolve_feature_net("alexnet")


def test_vgg19_taps_are_the_papers_layers():
    f = StyleFeatures("vgg19", pretrained=False)
    maps = f(torch.zeros(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in maps.items()} == {
        "relu3_1": (256, 16, 16), "relu4_1": (512, 8, 8), "relu4_2": (512, 8, 8)}
    assert not any(p.requires_grad for p in f.parameters())


def test_missing_vgg19_weights_fail_with_the_file_name(monkeypatch, tmp_path):
    from faceswaplab.faces.backends import MissingWeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="vgg19"):
        StyleFeatures("vgg19")
