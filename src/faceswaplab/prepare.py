"""Detect, align and crop faces from photos and videos into a dataset folder (command line).

    python -m faceswaplab.prepare input=<file|folder> output=<dir> [size=256] [backend=dlib|mtcnn|fan]
        [detector=hog|cnn] [select=largest|reference|all] [reference=<photo>] [fps=5] [workers=2] ...

The options are the keys of ``conf/prepare.yaml`` (:class:`PrepareOptions`); the work and the output layout are
described in :mod:`faceswaplab.data.preparation`, which Python code uses directly (``prepare(input, output,
**options)``).
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from faceswaplab.config import CONFIG_DIR
from faceswaplab.data.preparation import (NoFaceError, OutputError, PrepareError, PrepareOptions, PrepareSummary,
                                          prepare)
from faceswaplab.faces.pipeline import find_faces, make_backend
from faceswaplab.system import usable_cpus

__all__ = ["NoFaceError", "OutputError", "PrepareError", "PrepareOptions", "PrepareSummary", "find_faces",
           "make_backend", "prepare", "usable_cpus"]

log = logging.getLogger("faceswaplab.prepare")


@hydra.main(config_path=CONFIG_DIR, config_name="prepare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    options = OmegaConf.to_container(cfg, resolve=True)
    input_path, output = options.pop("input"), options.pop("output")
    try:
        prepare(input_path, output, **options)
    except (PrepareError, FileNotFoundError, ValueError) as e:
        log.error(str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
