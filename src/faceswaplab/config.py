"""Where the Hydra configs live: inside the installed package, or ``conf/`` at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """Absolute path of the config root holding ``train.yaml``, ``prepare.yaml`` and the config groups."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"faceswaplab configs not found in {here / 'conf'} or {here.parents[1] / 'conf'}")


CONFIG_DIR = str(config_dir())
