"""Swap faces in photos, folders and videos with a trained checkpoint or the landmark-warp baseline (command line).

    python -m faceswaplab.swap checkpoint=runs/deepfakes/<run> input=talk.mp4 output=talk_swapped.mp4
    python -m faceswaplab.swap method=landmark_warp source=alice.jpg input=photos/ output=swapped/
    python -m faceswaplab.swap checkpoint=<run> input=party.jpg output=out.png reference=bob.jpg direction=BtoA

The options are the keys of ``conf/swap.yaml`` (:class:`SwapOptions`); what happens to each frame, how videos
resume and how outputs are labelled is described in :mod:`faceswaplab.swapping`, which Python code uses directly
(``swap_media(input, output, checkpoint=..., **options)``).
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from faceswaplab.config import CONFIG_DIR
from faceswaplab.errors import one_line_errors, require_values
from faceswaplab.faces.tracking import FaceTracker, OneEuroFilter
from faceswaplab.swapping import (C2paOptions, FaceSwapper, LabelOptions, MaskOptions, NoFaceError,
                                  SmoothingOptions, SwapError, SwapOptions, SwapSummary, VideoOptions,
                                  load_swap_method, save_image, swap_media)

__all__ = ["C2paOptions", "FaceSwapper", "FaceTracker", "LabelOptions", "MaskOptions", "NoFaceError",
           "OneEuroFilter", "SmoothingOptions", "SwapError", "SwapOptions", "SwapSummary", "VideoOptions",
           "load_swap_method", "save_image", "swap", "swap_media"]

log = logging.getLogger("faceswaplab.swap")

swap = swap_media


@hydra.main(config_path=CONFIG_DIR, config_name="swap", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> None:
    """Command-line entry point (see the module docstring)."""
    require_values(cfg, ("input", "output"), "python -m faceswaplab.swap checkpoint=<run dir> input=<image, "
                                             "folder or video> output=<path> (or method=landmark_warp source=<photo>)")
    options = OmegaConf.to_container(cfg, resolve=True)
    input_path, output = options.pop("input"), options.pop("output")
    checkpoint, method = options.pop("checkpoint"), options.pop("method", None)
    summary = swap_media(input_path, output, checkpoint=checkpoint, method=method, **options)
    if summary.skipped:
        log.info("skipped: %s", "; ".join(f"{k} ({v})" for k, v in summary.skipped.items()))


if __name__ == "__main__":
    main()
