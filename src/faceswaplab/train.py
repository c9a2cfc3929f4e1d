"""Train a face-swap method (or, for methods without training, set it up and evaluate it) and write its run.

    python -m faceswaplab.train method=cyclegan
    python -m faceswaplab.train method=landmark_warp data=synthetic method.blend=feather hydra.run.dir=/tmp/run
    python -m faceswaplab.train method=deepfakes trainer=gpu logger=wandb experiment=deepfakes_original
    python -m faceswaplab.train method=fewshot ckpt_path=<meta-learning run> +finetune=<folder of photos or video>


The work is :func:`faceswaplab.training.train` (also importable from here); this module is its command line.
With ``optimized_metric=<name of a logged metric>`` the command returns that metric's last value, which Hydra's
sweepers (Optuna, Ax: ``-m hparams_search=<config>``) minimise or maximise.
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from faceswaplab.config import CONFIG_DIR
from faceswaplab.errors import one_line_errors
from faceswaplab.training import check_config, cpu_threads, train

__all__ = ["check_config", "cpu_threads", "main", "train"]


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> float | None:
    """Command-line entry point (see the module docstring); returns ``metrics[optimized_metric]`` when set."""
    result = train(cfg)
    print(json.dumps(result["metrics"], indent=2, sort_keys=True))
    name = cfg.get("optimized_metric")
    if name:
        if name not in result["metrics"]:
            raise KeyError(f"optimized_metric={name}: the run logged no such metric; it has "
                           f"{', '.join(sorted(result['metrics']))}")
        return float(result["metrics"][name])
    return None


if __name__ == "__main__":
    main()
