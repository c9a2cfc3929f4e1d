"""The SimSwap-style method's own maths: source picking, AdaIN injection, weak feature matching, its identity
network (never the benchmark's metric), and the held-out identities it is previewed and benchmarked on."""

import numpy as np
import pytest
import torch

from faceswaplab.data import FaceDataModule, HeldOut, ManySampler, SyntheticIdentities, SyntheticIdentity
from faceswaplab.methods.simswap import AdaIN, IdentityNet, SimSwap, pick_sources, weak_feature_matching
from faceswaplab.metrics.embedders import synthetic_weights_path


def test_pick_sources_gives_the_share_of_same_identity_pairs_asked_for():
    torch.manual_seed(0)
    ids = torch.arange(8).repeat_interleave(4)  # 8 identities x 4 images
    src, same = pick_sources(ids, 1.0)
    assert same.all() and (src != torch.arange(32)).all()  # another image of the same identity
    src, same = pick_sources(ids, 0.0)
    assert not same.any() and (ids[src] != ids).all()
    shares = [pick_sources(ids, 0.3)[1].float().mean().item() for _ in range(200)]
    assert abs(np.mean(shares) - 0.3) < 0.03


def test_pick_sources_falls_back_when_the_batch_lacks_a_kind():
    src, same = pick_sources(torch.tensor([0, 1, 2]), 1.0)  # nobody has a second image: each is its own source
    assert same.all() and src.tolist() == [0, 1, 2]
    src, same = pick_sources(torch.tensor([5, 5]), 0.0)  # one identity: the other image of it
    assert same.all() and src.tolist() == [1, 0]
    src, same = pick_sources(torch.tensor([4]), 0.5)  # a lone image is its own source
    assert src.tolist() == [0] and same.all()


def test_adain_sets_each_channels_scale_and_shift_from_the_identity_vector():
    torch.manual_seed(0)
    ada = AdaIN(3, 5)
    x, z = torch.randn(2, 3, 8, 8) * 4 + 2, torch.randn(2, 5)
    out = ada(x, z)
    gamma, beta = ada.style(z).chunk(2, 1)  # (2, 3) each
    assert torch.allclose(out.mean((2, 3)), beta, atol=1e-5)
    assert torch.allclose(out.std((2, 3), unbiased=False), (1 + gamma).abs(), atol=1e-3)


def test_weak_feature_matching_uses_only_the_last_layers_with_the_reference_weights():
    torch.manual_seed(0)
    fake = [(None, [torch.randn(2, 4, 5, 5) for _ in range(3)]) for _ in range(2)]
    real = [(None, [torch.randn(2, 4, 5, 5) for _ in range(3)]) for _ in range(2)]
    fake = [(torch.zeros(()), f) for _, f in fake]
    got = weak_feature_matching(fake, real, n_last=2, n_layers=3)
    direct = sum(4 / 4 / 2 * (f - r).abs().mean() for (_, ff), (_, rf) in zip(fake, real)
                 for f, r in zip(ff[1:], rf[1:]))
    assert torch.allclose(got, direct)
    assert weak_feature_matching(fake, real, n_last=0, n_layers=3) == 0


def test_identity_network_is_not_the_benchmarks_and_is_differentiable():
    net = IdentityNet("synthetic")
    assert synthetic_weights_path(None) != synthetic_weights_path({"seed": 2000, "identities": 100, "renders": 16,
                                                                   "epochs": 8})
    assert not list(net.parameters()) and not net.state_dict()  # frozen, outside checkpoints
    x = torch.zeros(2, 3, 64, 64, requires_grad=True)
    e = net(x)
    assert e.shape == (2, 128) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    e.sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="identity_net"):
        IdentityNet("vgg")


def test_dlib_identity_network_for_real_faces_is_differentiable():
    net = IdentityNet("dlib")
    assert not net.state_dict()
    x = torch.zeros(1, 3, 64, 64, requires_grad=True)
    e = net(x)
    assert e.shape == (1, 128)
    e.sum().backward()
    assert x.grad.abs().sum() > 0


def test_the_source_decides_the_output_and_swap_needs_one():
    torch.manual_seed(0)
    method = SimSwap(image_size=32, **SimSwap.tiny).eval()
    from faceswaplab.data.synthetic import SyntheticFaces

    faces = SyntheticFaces(seed=0)
    to = lambda r: torch.from_numpy(r.image).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa: E731
    target = to(faces.sample(0, 1, size=32))
    a, b = method.swap(target, to(faces.sample(1, 1, size=32))), method.swap(target, to(faces.sample(2, 1, size=32)))
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError, match="source"):
        method.swap(target)
    with pytest.raises(ValueError, match="same_ratio"):
        SimSwap(image_size=32, same_ratio=1.5)


def test_held_out_identities_have_no_training_images_and_the_usual_test_images():
    a = SyntheticIdentity(0, num_samples=20)
    held = HeldOut(a)
    split = held.split((0.8, 0.1, 0.1), 0)
    assert split["train"] == [] and {k: v for k, v in split.items() if k != "train"} == \
        {k: v for k, v in a.split((0.8, 0.1, 0.1), 0).items() if k != "train"}
    dm = FaceDataModule(identities=SyntheticIdentities(num_identities=3, num_samples=20, seed=3, held_out=[a]),
                        mode="many", image_size=32, batch_size=4, num_workers=0)
    dm.setup()
    assert dm.identity_names[0] == a.name and "synthetic3-0" in dm.identity_names
    train_ids = {int(i) for b in dm.train_dataloader() for i in b["identity"]}
    assert train_ids == {1, 2, 3}
    assert len(dm.dataset("test").datasets[0]) == 2


def test_unshuffled_many_sampler_goes_round_robin_over_identities():
    items = list(ManySampler([3, 2, 2], shuffle=False))
    assert [(k, i) for k, i, _ in items] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2)]
    assert all(s == -1 for *_, s in items)


def test_held_out_benchmark_protocol_trains_without_the_benchmarks_identities(tmp_path):
    import json

    from conftest import tiny
    from faceswaplab.benchmarking.pairs import run_settings
    from faceswaplab.benchmarking.rows import train_row
    from faceswaplab.config import compose

    cfg = compose("benchmark", ["data.A.num_samples=40", "data.image_size=32", f"train_dir={tmp_path}"])
    with pytest.raises(ValueError, match="protocol must be one of"):
        train_row("x", ["method=simswap"], cfg, "unseen")
    with pytest.raises(ValueError, match="data.mode=many"):  # a pair-only training config cannot hold A and B out
        train_row("x", ["method=simswap", "trainer=ddp_cpu"], cfg, "held_out")
    run = train_row("s", tiny("simswap", "trainer.max_epochs=1", "data.identities.num_identities=3"), cfg,
                    "held_out")
    splits = json.loads((run / "splits.json").read_text())["identities"]
    bench = FaceDataModule(A=SyntheticIdentity(0, 40), B=SyntheticIdentity(1, 40), image_size=32)
    bench.setup()
    for name in bench.identity_names:  # held out: no training image, the benchmark's own test images
        assert splits[name]["train"] == [] and splits[name]["test"] == bench.splits[name]["test"]
    assert sorted(splits) == ["synthetic0-0", "synthetic0-1", "synthetic3-0", "synthetic3-1", "synthetic3-2"]
    assert run_settings({"s": {"run": str(run)}})[1] == run / "splits.json"
