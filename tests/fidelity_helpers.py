"""Tiny configurations and short fits shared by the tests that compare the methods with their references."""

import lightning as L
import torch
from hydra.utils import instantiate

from faceswaplab.config import compose
from faceswaplab.data.synthetic import SyntheticFaces

TINY = {
    "pix2pix": ["method.gen_width=8", "method.disc_width=8", "method.disc_layers=2", "method.lr=1e-3"],
    "cyclegan": ["method.gen_width=8", "method.gen_blocks=2", "method.disc_width=8"],
    "deepfakes": ["method.enc_width=8", "method.latent=32", "method.dense_channels=32", "method.code_channels=16",
                  "method.dec_width=16", "method.lr=1e-3"],
}


def cfg_for(method: str, *overrides: str, size: int = 32):
    """The training config of a tiny `method` on 8 synthetic faces per identity at `size` px, batch 4."""
    return compose("train", [f"method={method}", f"data.image_size={size}", "data.num_workers=0", "data.batch_size=4",
                             "data.A.num_samples=8", "data.augment=null", "~experiment", *TINY[method], *overrides])


def fit(cfg, epochs: int = 1, batches: int = 1, callbacks=()):
    """Train the config's method for `epochs` of `batches` on the CPU; returns (method, data module)."""
    dm, method = instantiate(cfg.data), instantiate(cfg.method)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        limit_train_batches=batches, callbacks=list(callbacks))
    trainer.fit(method, dm)
    return method, dm


def faces(n: int = 3, size: int = 32, identity: int = 0):
    """`n` synthetic faces of one identity: images (n, 3, S, S) in [-1, 1] and landmarks (n, 68, 2)."""
    from faceswaplab.images import to_tensor

    samples = [SyntheticFaces(seed=0).sample(identity, i, size=size) for i in range(n)]
    images = to_tensor(torch.stack([torch.as_tensor(s.image) for s in samples]).numpy())
    return images, torch.stack([torch.as_tensor(s.landmarks, dtype=torch.float32) for s in samples])
