"""Benchmark every method on the same held-out pairs with the same metrics (command line).

    python -m faceswaplab.benchmark [methods.<row>=...] [num_pairs=...] [out_dir=...]

The config is ``conf/benchmark.yaml``; the protocol (rows, pairs, metrics, intervals, outputs) is described in
:mod:`faceswaplab.benchmarking`, whose :func:`run_benchmark` Python code calls directly.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from faceswaplab.benchmarking import bootstrap_interval, run_benchmark
from faceswaplab.config import CONFIG_DIR
from faceswaplab.errors import one_line_errors

__all__ = ["bootstrap_interval", "main", "run_benchmark"]


@hydra.main(config_path=CONFIG_DIR, config_name="benchmark", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> None:
    """Command-line entry point (see the module docstring)."""
    out = run_benchmark(cfg)
    print(Path(out["files"]["results.md"]).read_text())


if __name__ == "__main__":
    main()
