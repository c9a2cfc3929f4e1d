"""Where the Hydra configs live: inside the installed package, or ``conf/`` at the top of a source checkout."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def config_dir() -> Path:
    """Absolute path of the config root holding ``train.yaml``, ``prepare.yaml`` and the config groups."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"faceswaplab configs not found in {here / 'conf'} or {here.parents[1] / 'conf'}")


CONFIG_DIR = str(config_dir())


def compose(name: str, overrides: Sequence[str] = (), output_dir: str | os.PathLike | None = None,
            edit: Callable[[Any], None] | None = None):
    """Compose the config `name` (``train``, ``benchmark``, ``swap``, ``prepare``) with command-line style
    `overrides`, as ``python -m faceswaplab.<name>`` would, and resolve it (``${hydra:...}`` included).

    `output_dir` replaces Hydra's output directory (the run directory; by default the config's ``hydra.run.dir``,
    relative to the current directory). `edit(cfg)`, if given, changes the composed config before it is resolved,
    so that interpolations see the change (the benchmark puts its own ``data`` into training configs). Works inside
    another Hydra application too, whose Hydra state is restored afterwards.

    >>> cfg = compose("train", ["method=deepfakes", "data.image_size=32"], output_dir="/tmp/run")
    >>> cfg.run_dir, cfg.method._target_, cfg.data.image_size
    ('/tmp/run', 'faceswaplab.methods.deepfakes.DeepFakes', 32)
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict, read_write

    def _compose():
        cfg = hydra_compose(name, overrides=list(overrides), return_hydra_config=True)
        outer = HydraConfig.instance().cfg  # the calling application's, if any
        HydraConfig.instance().set_config(cfg)  # hydra.run.dir may read ${hydra:runtime.choices...}
        out = Path(output_dir if output_dir is not None else HydraConfig.get().run.dir)
        with read_write(cfg.hydra):
            cfg.hydra.runtime.output_dir = str(out.expanduser().resolve())
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
            if edit is not None:
                edit(cfg)
        try:
            OmegaConf.resolve(cfg)
        finally:
            if outer is not None:
                HydraConfig.instance().set_config(outer)
        return cfg

    # Inside another Hydra application the global state points at that application's configs: set it aside while
    # composing from ours, then put it back.
    outer_hydra = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return _compose()
    finally:
        GlobalHydra.instance().clear()  # initialize_config_dir may have swapped the instance: ask it again
        if outer_hydra is not None:
            GlobalHydra.instance().initialize(outer_hydra)
