"""DeepFakes df against LIAE, each from scratch and pretrained on a population then fine-tuned on the pair, on the
synthetic faces; every variant scored by the benchmark.

    python experiments/scripts/deepfakes_variants.py --budget 240 --pretrain-budget 240 --out runs/df_variants

Six trainings of the CPU preset (conf/experiment/deepfakes_cpu.yaml, 64 px) on the pair of the benchmark
(population 0, identities 0 and 1), each stopped by `trainer.max_time`:

* ``df_scratch``, ``liae_scratch``: `--budget` seconds from random weights;
* ``df_pretrain``, ``liae_pretrain``: `--pretrain-budget` seconds on the 64 identities of population 2
  (experiment=deepfakes_pretrain; none of the benchmark's identities);
* ``df_pretrained``, ``liae_pretrained``: `--budget` seconds on the pair from those weights (init_from).

The fine-tunes get the same time as the runs from scratch (equal fine-tune time); the pretraining time is reported
beside them. For equal total time, the table also gives the step and seconds at which each fine-tune first reached
its from-scratch run's final validation reconstruction error (``val/reconstruction_l1``, validated every
`--val-every` steps): pretraining plus that time against the from-scratch budget. Then one benchmark
(``python -m faceswaplab.benchmark`` with a ``{run: dir}`` row per pair run and the reference rows) scores the
four on the same held-out pairs; ``<out>/results.md`` holds both tables. A finished training is not redone.
"""

import argparse
import json
from pathlib import Path

from faceswaplab.benchmarking import run_benchmark
from faceswaplab.config import compose
from faceswaplab.train import train

ARCHS = {"df": [], "liae": ["method.arch=liae"]}


def _max_time(seconds: float) -> str:
    s = int(round(seconds))
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _run(run_dir: Path, overrides: list[str]) -> list[dict]:
    """Train into `run_dir` unless it finished before; its metrics.jsonl validation records."""
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        train(compose("train", overrides, output_dir=run_dir))
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("stage") == "validate" and "val/reconstruction_l1" in r]


def _reached(records: list[dict], level: float) -> dict | None:
    return next((r for r in records if r["val/reconstruction_l1"] <= level), None)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=240.0, help="training seconds of each pair run")
    p.add_argument("--pretrain-budget", type=float, default=240.0, help="training seconds of each pretraining")
    p.add_argument("--val-every", type=int, default=100, help="training steps between validations")
    p.add_argument("--pairs", type=int, default=64, help="benchmark pairs")
    p.add_argument("--out", type=Path, default=Path("runs/deepfakes_variants"))
    a = p.parse_args()

    # The CPU preset (picked up with trainer=cpu), stopped by time; an epoch is `val_every` steps.
    common = ["method=deepfakes", f"trainer.limit_train_batches={a.val_every}", "trainer.max_epochs=100000"]
    rows, report = {}, []
    for arch, arch_args in ARCHS.items():
        pair = [*common, *arch_args, f"trainer.max_time={_max_time(a.budget)}"]
        scratch = _run(a.out / f"{arch}_scratch", pair)
        pre = _run(a.out / f"{arch}_pretrain", [*common, *arch_args, "experiment=deepfakes_pretrain",
                                                f"trainer.max_time={_max_time(a.pretrain_budget)}"])
        tuned = _run(a.out / f"{arch}_pretrained", [*pair, f"init_from={a.out / f'{arch}_pretrain'}"])
        final = scratch[-1]
        hit = _reached(tuned, final["val/reconstruction_l1"])
        pre_s = pre[-1]["perf/wall_s"]
        for name, recs, pretrain_s in ((f"{arch}_scratch", scratch, 0.0), (f"{arch}_pretrained", tuned, pre_s)):
            rows[name] = str(a.out / name)
            report.append(
                f"| {name} | {pretrain_s:.0f} | {recs[-1]['perf/wall_s']:.0f} | {recs[-1]['step']} | "
                f"{recs[-1]['val/reconstruction_l1']:.4f} | "
                + ("" if recs is scratch else
                   "not reached" if hit is None else f"step {hit['step']}, {hit['perf/wall_s']:.0f} s") + " |")

    bench = run_benchmark(compose("benchmark", [
        "~methods", "+methods.target.reference=target", "+methods.source.reference=source",
        "+methods.source_other.reference=source_other", *(f"+methods.{n}.run={d}" for n, d in rows.items()),
        f"num_pairs={a.pairs}", f"out_dir={a.out / 'benchmark'}", "progress=false"]))
    table = Path(bench["files"]["results.md"]).read_text()
    text = ("| run | pretraining s | training s | steps | final val/reconstruction_l1 | fine-tune reached the "
            "from-scratch final at |\n|---|---|---|---|---|---|\n" + "\n".join(report) + "\n\n" + table)
    (a.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
