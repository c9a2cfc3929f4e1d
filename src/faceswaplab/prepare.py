"""Detect, align and crop faces from photos and videos into a dataset folder (command line).

    python -m faceswaplab.prepare input=<file|folder> output=<dir> [size=256] [backend=dlib|mtcnn|fan]
        [detector=hog|cnn] [select=largest|reference|all] [reference=<photo>] [fps=5] [workers=2] ...

The options are the keys of ``conf/prepare.yaml`` (:class:`PrepareOptions`); the work and the output layout are
described in :mod:`faceswaplab.data.preparation`, which Python code uses directly (``prepare(input, output,
**options)``).
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from faceswaplab.config import CONFIG_DIR
from faceswaplab.errors import one_line_errors, require_values
from faceswaplab.data.preparation import (NoFaceError, OutputError, PrepareError, PrepareOptions, PrepareSummary,
                                          prepare)
from faceswaplab.faces.pipeline import find_faces, make_backend
from faceswaplab.system import usable_cpus

__all__ = ["NoFaceError", "OutputError", "PrepareError", "PrepareOptions", "PrepareSummary", "find_faces",
           "make_backend", "prepare", "usable_cpus"]

log = logging.getLogger("faceswaplab.prepare")


@hydra.main(config_path=CONFIG_DIR, config_name="prepare", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> None:
    """Command-line entry point (see the module docstring)."""
    require_values(cfg, ("input", "output"), "python -m faceswaplab.prepare input=<photo, folder or video> "
                                             "output=<folder>")
    options = OmegaConf.to_container(cfg, resolve=True)
    input_path, output = options.pop("input"), options.pop("output")
    prepare(input_path, output, **options)


if __name__ == "__main__":
    main()
