"""Method-specific behaviour beyond the contract (tests/test_method_contract.py): directions, DeepFakes alignment."""

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import method_class
from faceswaplab.config import CONFIG_DIR


def compose_cfg(method: str, *overrides: str):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        return compose(
            "train",
            overrides=[f"method={method}", "data.image_size=32", "data.num_workers=0", "data.batch_size=8",
                       "data.A.num_samples=10", "data.augment=null",
                       *(f"method.{k}={v}" for k, v in method_class(method).tiny.items()), *overrides],
        )


def fit(cfg, steps: int, callbacks=()):
    dm = instantiate(cfg.data)
    method = instantiate(cfg.method)
    trainer = L.Trainer(max_epochs=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        limit_train_batches=1, callbacks=list(callbacks))
    trainer.fit(method, dm)
    return method, dm, trainer


def test_swap_rejects_unknown_direction():
    method = instantiate(compose_cfg("deepfakes").method)
    with pytest.raises(ValueError, match="direction"):
        method.swap(torch.zeros(1, 3, 32, 32), direction="AtoC")


def _rotated(images: torch.Tensor, landmarks: torch.Tensor, degrees: float, shift: float):
    """The crops turned by `degrees` about their centre and shifted by `shift` pixels, with their landmarks."""
    from faceswaplab.data.augment import apply_affine, transform_points

    n, _, h, w = images.shape
    a = torch.deg2rad(torch.tensor(degrees))
    c, s = torch.cos(a), torch.sin(a)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    m = torch.tensor([[c, -s, cx - c * cx + s * cy + shift], [s, c, cy - s * cx - c * cy + shift]]).expand(n, 2, 3)
    return apply_affine(images, m), transform_points(landmarks, m), m


def test_deepfakes_swap_follows_the_target_through_alignment():
    """With `align`, a turned and shifted target gives the same swap turned and shifted; without, it does not."""
    from faceswaplab.data.augment import apply_affine

    errors = {}
    for align in (True, False):
        L.seed_everything(0)
        method, dm, _ = fit(compose_cfg("deepfakes", f"method.align={align}"), steps=20)
        dm.setup("test")
        batch = next(iter(dm.test_dataloader()))
        x, lm = batch["image_A"], batch["landmarks_A"]
        x_rot, lm_rot, m = _rotated(x, lm, 15.0, 1.5)
        method.eval()
        with torch.no_grad():
            if align:  # the aligned crops of both copies agree
                a0, _, _ = method.to_template(lm, x)
                a1, _, _ = method.to_template(lm_rot, x_rot)
                assert (a0 - a1)[..., 8:24, 8:24].abs().mean() < 0.05
            expected = apply_affine(method.swap(x, target_landmarks=lm, direction="AtoB"), m)
            got = method.swap(x_rot, target_landmarks=lm_rot, direction="AtoB")
        face = apply_affine(batch["mask_A"], m, padding="zeros") > 0.9
        errors[align] = (got - expected).abs().mean(1, keepdim=True)[face].mean().item()
    assert errors[True] < 0.5 * errors[False], errors
