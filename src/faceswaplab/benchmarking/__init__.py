"""The benchmark: every method swaps the same held-out (source, target) pairs and is scored by the same metrics.

``python -m faceswaplab.benchmark`` (config ``conf/benchmark.yaml``) or :func:`run_benchmark` from Python.
Files: :mod:`.rows` (what each row is, and training it), :mod:`.pairs` (the data and the held-out pairs),
:mod:`.run` (swapping and scoring), :mod:`.stats` (intervals), :mod:`.significance` (paired tests),
:mod:`.report` (tables, records, W&B), :mod:`.plots`, :mod:`.budget` (scores along training).

Rows (``methods:``): a method trained by the benchmark itself (``{train: [overrides of conf/train.yaml]}``, on the
benchmark's data, into ``train_dir/<row name>``; a finished training is reused, an interrupted one resumed), a
trained run (``{run: <run dir>}``: its ``checkpoints/last.ckpt``, image size and ``splits.json``), an untrained
method (``{method: landmark_warp}``), and three references measured through exactly the same path: ``target``
(the output is the target unchanged: all attributes, no identity moved), ``source`` (the source photo: all
identity, none of the target's pose and expression) and ``source_other`` (another test photo of the source
identity: what a real photo of that person scores, the realistic identity ceiling).

Pairs: ``num_pairs`` pairs of the TEST split of the pair data module, drawn by
:meth:`~faceswaplab.data.FaceDataModule.test_pairs` from ``seed``; they alternate source A onto target B
(direction ``BtoA`` for identity-specific methods) and source B onto target A (``AtoB``). ``pairs_file`` gives a
fixed list instead (``pairs.json`` of an earlier benchmark: identity names and sample ids).

Metrics (:func:`faceswaplab.metrics.build_metrics`), every one on every output (nothing is dropped):

* landmarks of every output (and of the references' images) come from dlib's 68-point predictor run inside the
  aligned crop's known face box (:func:`faceswaplab.metrics.predict_landmarks`), so no output lacks them;
* ``face_detected``: does a face detector find a face in the output at all;
* identity: cosine similarity to the source, ``identity_match`` (a verifier's accept at its threshold), top-1 and
  top-5 retrieval in a gallery of every identity of the data plus ``gallery.distractors``, with chance printed;
* attributes: landmark NME, pose and expression error to the target, and the same to the source (an output that
  copies the source's pose scores low there);
* background LPIPS, LPIPS, FID and KID when their weights are available (otherwise listed with the reason), and
  ``identity_fd``, a Fréchet distance on the identity embedder's features, as an offline stand-in.

Every per-sample metric is reported as its mean over the evaluated samples and a seeded percentile-bootstrap
interval. Speed: swap latency per image (ms, over all pairs, after one warm-up batch) and peak memory (CUDA
peak allocation, or the process' peak RSS on CPU, which never decreases, so later rows inherit earlier peaks).

Speed also reports the training throughput of trained rows (median ``perf/images_per_sec`` of their
``metrics.jsonl``).

``results.md`` also rescales the identity and attribute means between the reference rows, and
:mod:`.significance` tests every two rows on the same pairs (Wilcoxon signed-rank, Holm-corrected).

Outputs in ``out_dir``: ``results.csv``, ``results.md``, ``results.jsonl`` (one object per method: numbers,
config, git commit, seeds, embedder and weight files, calibration), ``significance.md``/``.csv``, ``pairs.json``, ``samples.png`` (rows: pairs; columns:
source, target, then each method), ``metrics.png`` (a bar per method and metric with its bootstrap interval) and
``identity_vs_attributes.png`` (identity similarity against pose error, one point per method); with
``budget.enabled``, :mod:`.budget`'s ``budget.csv``/``.md``/``.png`` (each trained row at its periodic checkpoints,
against images seen and wall time); with
``wandb.enabled`` also a W&B run holding the results table and these images (offline without an API key).
"""

from faceswaplab.benchmarking.run import run_benchmark
from faceswaplab.benchmarking.stats import bootstrap_interval

__all__ = ["bootstrap_interval", "run_benchmark"]
