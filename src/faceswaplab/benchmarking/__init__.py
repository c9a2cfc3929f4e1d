"""The benchmark: every method swaps the same held-out (source, target) pairs and is scored by the same metrics.

``python -m faceswaplab.benchmark`` (config ``conf/benchmark.yaml``) or :func:`run_benchmark` from Python.
Files: :mod:`.rows` (what each row is, and training it), :mod:`.pairs` (the data and the held-out pairs),
:mod:`.run` (swapping and scoring), :mod:`.stats` (intervals), :mod:`.report` (tables, records, W&B),
:mod:`.plots`.

Rows (``methods:``): a method trained by the benchmark itself (``{train: [overrides of conf/train.yaml]}``, on the
benchmark's data, into ``train_dir/<row name>``; a finished training is reused, an interrupted one resumed), a
trained run (``{run: <run dir>}``: its ``checkpoints/last.ckpt``, image size and ``splits.json``), an untrained
method (``{method: landmark_warp}``), and two references: ``target`` (the output is the target unchanged: perfect
attributes, no identity transfer) and ``source`` (the output is the source image: perfect identity, the source's
own pose and expression).

Pairs: ``num_pairs`` pairs of the TEST split of the pair data module, drawn by
:meth:`~faceswaplab.data.FaceDataModule.test_pairs` from ``seed``; they alternate source A onto target B
(direction ``BtoA`` for identity-specific methods) and source B onto target A (``AtoB``). ``pairs_file`` gives a
fixed list instead (``pairs.json`` of an earlier benchmark: identity names and sample ids).

Metrics (:func:`faceswaplab.metrics.build_metrics`):

* identity similarity: output vs source embeddings; retrieval top-1 against a gallery of the per-identity mean
  embeddings of ``gallery_per_identity`` test images of each identity of the pair data. The output is embedded
  with the target's landmarks (a swap keeps the target's geometry); the ``source`` row with the source's.
* landmark NME, pose error and expression error against the target's ground-truth landmarks. The output's
  landmarks are detected (dlib HOG on the crop upscaled to ``detect_size``); undetected faces are failures,
  counted per metric. With ``reference_landmarks=ground_truth`` the reference rows use their images' known
  landmarks, so ``target`` scores exactly 0.
* background LPIPS, LPIPS (output vs target), FID and KID (outputs vs targets) when their weights are available;
  otherwise listed with the reason.

Every per-sample metric is reported as its mean over the evaluated samples and a seeded percentile-bootstrap
interval. Speed: swap latency per image (ms, over all pairs, after one warm-up batch) and peak memory (CUDA
peak allocation, or the process' peak RSS on CPU, which never decreases, so later rows inherit earlier peaks).

Speed also reports the training throughput of trained rows (median ``perf/images_per_sec`` of their
``metrics.jsonl``).

Outputs in ``out_dir``: ``results.csv``, ``results.md``, ``results.jsonl`` (one object per method: numbers,
config, git commit, seeds, embedder and weight files), ``pairs.json``, ``samples.png`` (rows: pairs; columns:
source, target, then each method), ``metrics.png`` (a bar per method and metric with its bootstrap interval) and
``identity_vs_attributes.png`` (identity similarity against pose error, one point per method); with
``wandb.enabled`` also a W&B run holding the results table and these images (offline without an API key).
"""

from faceswaplab.benchmarking.run import run_benchmark
from faceswaplab.benchmarking.stats import bootstrap_interval

__all__ = ["bootstrap_interval", "run_benchmark"]
