"""Occluders in the synthetic renders, the occlusion-aware masks (hull, segment, parse) and what they protect."""

import numpy as np
import pytest
import torch

from faceswaplab.data import FaceDataModule, SyntheticIdentity
from faceswaplab.data.synthetic import OCCLUDERS, SyntheticFaces
from faceswaplab.faces.backends import MissingWeightsError
from faceswaplab.faces.occlusion import FaceParser, visibility


def test_no_occlusion_by_default_and_occluders_only_cover():
    plain, occluded = SyntheticFaces(0, 4), SyntheticFaces(0, 4, occlusion=1.0)
    for i in range(6):
        a, b = plain.sample(i % 4, i, 64), occluded.sample(i % 4, i, 64)
        assert a.occluder is None and np.array_equal(a.visible, a.mask)
        assert b.occluder in OCCLUDERS
        # the rest of the render does not depend on the rate: same landmarks, mask and pixels off the occluder
        assert np.array_equal(a.landmarks, b.landmarks) and np.array_equal(a.mask, b.mask)
        hidden = (b.mask - b.visible) > 0.5
        assert hidden.sum() > 10
        assert np.all(b.visible <= b.mask + 1e-6)
        changed = np.abs(a.image.astype(int) - b.image.astype(int)).max(-1) > 0
        assert changed[hidden].mean() > 0.9
    rate = np.mean([SyntheticFaces(0, 4, occlusion=0.3).sample(i % 4, i, 16).occluder is not None
                    for i in range(200)])
    assert 0.2 < rate < 0.4
    with pytest.raises(ValueError, match="occlusion"):
        SyntheticFaces(0, occlusion=1.5)


@pytest.mark.parametrize("kind", OCCLUDERS)
def test_every_occluder_hides_part_of_the_face_deterministically(kind):
    faces = SyntheticFaces(3)
    r1 = faces.render(1, 64, pose=(15, 0, 0), occluder=kind, occluder_rng=np.random.default_rng(5))
    r2 = faces.render(1, 64, pose=(15, 0, 0), occluder=kind, occluder_rng=np.random.default_rng(5))
    assert np.array_equal(r1.image, r2.image) and np.array_equal(r1.visible, r2.visible)
    hidden = 1 - r1.visible.sum() / r1.mask.sum()
    assert 0.01 < hidden < 0.8, hidden


def test_data_module_carries_the_visible_mask_through_the_augmentation():
    src = SyntheticIdentity(0, num_samples=10, occlusion=1.0)
    from faceswaplab.data.augment import Augment
    from faceswaplab.data.datasets import FaceDataset

    plain = FaceDataset(src, [0], 0, 32)[0]
    flipped = FaceDataset(src, [0], 0, 32, Augment(flip=1.0, brightness=0.2))[(0, 7)]
    assert plain["visible"].shape == (1, 32, 32)
    assert torch.allclose(flipped["visible"], plain["visible"].flip(-1), atol=1e-5)
    assert "visible" not in FaceDataset(SyntheticIdentity(0, num_samples=10), [0], 0, 32)[0]


def _batches(*kinds, occlusion=1.0):
    """The first training batch of the same synthetic samples with each mask kind."""
    out = {}
    for kind in kinds:
        dm = FaceDataModule(A=SyntheticIdentity(0, 20, occlusion=occlusion), B=SyntheticIdentity(1, 20), image_size=64,
                            batch_size=4, augment=None, mask=kind)
        out[kind] = next(iter(dm.train_dataloader()))
    return out


def test_data_module_mask_option():
    with pytest.raises(ValueError, match="data.mask must be one of hull, segment, parse"):
        FaceDataModule(A=SyntheticIdentity(0, 20), B=SyntheticIdentity(1, 20), mask="xseg")
    batches = _batches("hull", "segment")
    assert torch.equal(batches["hull"]["image_A"], batches["segment"]["image_A"])
    hull, seg, truth = batches["hull"]["mask_A"], batches["segment"]["mask_A"], batches["segment"]["visible_A"]
    hidden = (hull > 0.5) & (truth < 0.5)  # occluder inside the hull
    assert hidden.sum() > 50
    assert (seg[hidden] < 0.5).float().mean() > 0.7  # the segment mask leaves most of the occluder out
    assert torch.all(seg <= hull + 1e-6)


def test_deepfakes_loss_does_not_train_the_decoder_on_occluder_pixels():
    from faceswaplab.losses import reconstruction_terms

    batches = _batches("hull", "segment")
    real, parts, truth = batches["hull"]["image_A"], batches["hull"]["parts_A"], batches["segment"]["visible_A"]
    grads = {}
    for kind, batch in batches.items():  # the squared-error term of DeepFakes' default (faceswap) loss
        fake = torch.zeros_like(real, requires_grad=True)
        terms = reconstruction_terms("faceswap", fake, real, batch["mask_A"], parts, mse_weight=1.0,
                                     eye_multiplier=3.0, mouth_multiplier=2.0)
        sum(terms.values()).backward()
        grads[kind] = fake.grad.abs().sum(1, keepdim=True)
    occluder = (truth < 0.5) & (batches["hull"]["mask_A"] > 0.5)  # occluder pixels inside the hull
    assert occluder.sum() > 50
    left_out = occluder & (batches["segment"]["mask_A"] == 0)
    assert left_out.sum() > 0.6 * occluder.sum()
    assert grads["segment"][left_out].max() == 0 and grads["hull"][left_out].min() > 0
    ratio = grads["segment"][occluder].mean() / grads["hull"][occluder].mean()
    assert ratio < 0.35, ratio  # the decoder is hardly pulled towards drawing the occluder


def test_segmenter_beats_the_hull_on_held_out_occluded_renders():
    from faceswaplab.benchmarking.occlusion import mask_ious, occluded_targets

    ious = mask_ious(occluded_targets(24, 64), ["hull", "segment"])
    print({k: round(float(v.mean()), 3) for k, v in ious.items()})  # the figures, for the test log
    assert ious["segment"].mean() > ious["hull"].mean() + 0.05
    assert ious["hull"].mean() > ious["whole_crop"].mean()
    assert (ious["segment"] > ious["hull"]).mean() > 0.8


def test_swap_keeps_the_occluder_with_the_segment_mask_not_with_the_hull():
    from faceswaplab.benchmarking.occlusion import swap_scores

    faces = SyntheticFaces(0, 8)
    targets = [SyntheticFaces(0, 8, occlusion=1.0).sample(i, 2300, 128) for i in range(3)]
    sources = [faces.sample(i + 3, 2300, 128) for i in range(3)]
    s = swap_scores(targets, sources, ["hull", "segment"])
    print({k: {m: round(float(v.mean()), 3) for m, v in d.items()} for k, d in s.items()})
    assert np.all(s["segment"]["occluder_mae"] < 0.5 * s["hull"]["occluder_mae"])
    assert s["segment"]["occluder_kept"].mean() > 0.7 > s["hull"]["occluder_kept"].mean()
    assert np.all(s["segment"]["face_change"] > 1.0)  # it still swaps the visible face


def test_swap_options_take_the_mask_kind():
    from faceswaplab.swapping.options import SwapOptions

    assert SwapOptions.from_dict({"mask": "segment"}).mask.kind == "segment"
    assert SwapOptions.from_dict({"mask": {"kind": "parse", "blur": 0.1}}).mask.blur == 0.1
    with pytest.raises(ValueError, match="mask.kind must be one of hull, segment, parse"):
        SwapOptions.from_dict({"mask": "xseg"}).validate()


def test_face_parser_names_its_missing_weights_and_loads_a_checkpoint_from_the_torch_cache(tmp_path, monkeypatch):
    from faceswaplab.nets.bisenet import BiSeNet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"79999_iter\.pth not found at .*hub/checkpoints"):
        FaceParser()
    with pytest.raises(MissingWeightsError, match=r"79999_iter\.pth"):  # the data module stops at setup
        FaceDataModule(A=SyntheticIdentity(0, 20), B=SyntheticIdentity(1, 20), mask="parse").setup()
    # no pretrained file can be had here: a randomly initialised one of the same layout stands in for it
    path = tmp_path / "hub" / "checkpoints" / "79999_iter.pth"
    path.parent.mkdir(parents=True)
    torch.save(BiSeNet().state_dict(), path)
    parser = FaceParser(size=64)
    p = parser(torch.rand(2, 3, 48, 48) * 2 - 1)
    assert p.shape == (2, 1, 48, 48) and float(p.min()) >= 0 and float(p.max()) <= 1 + 1e-5


def test_hull_visibility_is_all_ones():
    x = torch.zeros(2, 3, 16, 16)
    assert torch.equal(visibility("hull", x), torch.ones(2, 1, 16, 16))


def test_segmenter_ships_with_the_package_and_other_configs_name_the_command(tmp_path, monkeypatch):
    from faceswaplab.faces.segmenter import ASSETS, VisibleFaceSegmenter, segmenter_weights_path

    monkeypatch.setenv("FACESWAPLAB_CACHE", str(tmp_path))
    assert segmenter_weights_path().parent == ASSETS
    assert segmenter_weights_path().stat().st_size < 1_000_000
    with pytest.raises(MissingWeightsError, match="python -m faceswaplab.faces.segmenter --train"):
        VisibleFaceSegmenter(config={"epochs": 1})


def test_train_config_sets_the_mask_and_the_occlusion_rate():
    from hydra.utils import instantiate

    from conftest import compose_train

    cfg = compose_train("data=synthetic", "data.mask=segment", "data.A.occlusion=1.0", "data.image_size=32",
                        "data.num_workers=0", "data.A.num_samples=10")
    dm = instantiate(cfg.data)
    assert dm.mask == "segment" and dm.A.occlusion == dm.B.occlusion == dm.identity_set.occlusion == 1.0
    batch = dm.load([dm.test_pairs(1)[0][1]])
    assert batch["visible"].shape == (1, 1, 32, 32) and batch["mask"].shape == (1, 1, 32, 32)


def test_whole_photo_swap_with_the_segment_mask_changes_a_subset_of_the_hull_swap(media):
    from faceswaplab.io import read_image
    from faceswaplab.methods.landmark_warp import LandmarkWarp

    photo = read_image(sorted((media / "photos" / "obama").iterdir())[0])
    source = read_image(media / "photos" / "biden" / "fr_biden.jpg")
    method = LandmarkWarp()
    changed = {k: np.abs(method.swap_photo(photo, source, size=128, mask=k).astype(int) - photo).max(-1) > 3
               for k in ("hull", "segment")}
    assert 0 < changed["segment"].sum() < changed["hull"].sum()
    assert (changed["segment"] & ~changed["hull"]).sum() < 0.05 * changed["segment"].sum()
