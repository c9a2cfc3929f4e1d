"""Fault injection on checkpoints: SIGKILL during checkpoint writes, and damaged bytes, over many trials.

    python benchmarks/checkpoint_soak.py [--kills 10] [--epochs 4] [--corruptions 200] [--seed 0]
        [--out benchmarks/checkpoint_soak.md]

1. **Kills.** A tiny DeepFakes run (32 px, ``python -m faceswaplab.train`` in a subprocess) is trained one epoch,
   then restarted `--kills` times into the same run directory with ``trainer.max_epochs=<epochs>``; each time it is
   sent SIGKILL while a checkpoint is being written (as soon as the temporary ``.last.*.tmp.ckpt`` or its hash
   record appears, after a random 0-30 ms more). After each kill the script checks that ``last.ckpt`` verifies
   (:func:`faceswaplab.checkpoints.verify`, against its SHA-256) and counts the temporary files left; at the next
   start it checks that they were swept. Finally the run is let finish and its weights compared bit for bit with
   an uninterrupted run of the same command.
2. **Damage.** `--corruptions` copies of the final ``last.ckpt`` each get 1 to 4096 random bytes overwritten at a
   random offset; each must be refused by :func:`~faceswaplab.checkpoints.verify`, once with its SHA-256 record
   and once without it (then only the zip archive's CRC32 checksums can tell).
3. **Cost.** The time of :func:`~faceswaplab.checkpoints.verify` against a plain ``torch.load`` of the same file.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from faceswaplab import checkpoints
from faceswaplab.io import write_text
from faceswaplab.runs import RunDir

TINY = ["method=deepfakes", "method.enc_width=8", "method.latent=32", "method.dense_channels=32",
        "method.code_channels=16", "method.dec_width=16", "data.image_size=32", "data.batch_size=4",
        "data.num_workers=0", "data.persistent_workers=false", "data.A.num_samples=40",
        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false",
        "callbacks.preview.pairs=0", "~logger", "threads=1"]


def start(run: Path, epochs: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "faceswaplab.train", f"hydra.run.dir={run}", *TINY, f"trainer.max_epochs={epochs}"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def temporaries(run: RunDir) -> list[Path]:
    folder = run.checkpoint_dir
    return sorted(folder.glob(".*.tmp.ckpt")) + sorted(folder.glob(".*.tmp.sha256")) if folder.is_dir() else []


def kill_during_write(proc: subprocess.Popen, run: RunDir, old: set[Path], rng: random.Random,
                      timeout: float = 300) -> dict:
    """Wait for a new temporary checkpoint file, SIGKILL the run a random moment later; what was found."""
    deadline = time.time() + timeout
    swept = None
    while proc.poll() is None and time.time() < deadline:
        now = set(temporaries(run))
        if now - old:
            swept = not (old & now)  # the previous kill's leftovers are gone once this start writes
            time.sleep(rng.uniform(0, 0.03))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.0005)
    else:
        proc.kill()
        return {"killed": False, "stderr": (proc.stderr.read() if proc.stderr else "")[-2000:]}
    try:
        how = checkpoints.verify(run.last_checkpoint)
    except checkpoints.CheckpointError as e:
        how = f"FAILED: {e}"
    return {"killed": True, "swept": swept, "verify": how, "left": temporaries(run)}


def damage_trials(ckpt: Path, n: int, rng: random.Random, work: Path) -> dict[str, int]:
    """Overwrite random bytes of copies of `ckpt`; how many each check refused."""
    caught = {"sha256": 0, "crc32": 0}
    data = ckpt.read_bytes()
    for _ in range(n):
        length = rng.choice([1, rng.randint(2, 64), rng.randint(65, 4096)])
        offset = rng.randrange(0, len(data) - length)
        noise = bytes(rng.randrange(256) for _ in range(length))
        if noise == data[offset:offset + length]:
            noise = bytes(b ^ 0xFF for b in noise)
        copy = work / "damaged.ckpt"
        copy.write_bytes(data[:offset] + noise + data[offset + length:])
        for mode in caught:
            record = checkpoints.hash_file(copy)
            if mode == "sha256":
                shutil.copy(checkpoints.hash_file(ckpt), record)
                record.write_text(record.read_text().replace(ckpt.name, copy.name))
            else:
                record.unlink(missing_ok=True)
            try:
                checkpoints.verify(copy)
            except checkpoints.CheckpointError:
                caught[mode] += 1
    return caught


def timing(ckpt: Path, repeats: int = 5) -> tuple[float, float]:
    """Median seconds of verify() and of a plain weights-only torch.load, alternated."""
    t_verify, t_load = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        checkpoints.verify(ckpt)
        t1 = time.perf_counter()
        torch.load(ckpt, map_location="cpu", weights_only=True)
        t2 = time.perf_counter()
        t_verify.append(t1 - t0)
        t_load.append(t2 - t1)
    return sorted(t_verify)[repeats // 2], sorted(t_load)[repeats // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--corruptions", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rng = random.Random(args.seed)
    load_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        straight = start(tmp / "straight", args.epochs)
        if straight.wait() != 0:
            sys.exit(f"the uninterrupted run failed:\n{straight.stderr.read()[-3000:]}")

        run = RunDir(tmp / "killed")
        first = start(run.path, 1)
        if first.wait() != 0:
            sys.exit(f"the first epoch failed:\n{first.stderr.read()[-3000:]}")
        results = []
        for i in range(args.kills):
            found = kill_during_write(start(run.path, args.epochs), run, set(temporaries(run)), rng)
            results.append(found)
            print(f"kill {i + 1}: {found}", flush=True)
        final = start(run.path, args.epochs)
        ok = final.wait() == 0
        a = torch.load(RunDir(tmp / "straight").last_checkpoint, weights_only=True)["state_dict"]
        b = torch.load(run.last_checkpoint, weights_only=True)["state_dict"]
        identical = ok and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        left_at_end = temporaries(run)

        caught = damage_trials(run.last_checkpoint, args.corruptions, rng, tmp)
        size_mb = run.last_checkpoint.stat().st_size / 2**20
        t_verify, t_load = timing(run.last_checkpoint)

    killed = [r for r in results if r["killed"]]
    verified = sum(r["verify"] == "sha256" for r in killed)
    left = sum(bool(r["left"]) for r in killed)
    swept = [cur["swept"] for prev, cur in zip(killed, killed[1:]) if prev["left"]]
    lines = [
        "# Checkpoint fault injection",
        "",
        "SIGKILL during checkpoint writes and damaged bytes; see `checkpoint_soak.py` for what each trial does.",
        "",
        f"- command: `python benchmarks/checkpoint_soak.py {shlex.join(sys.argv[1:])}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}; "
        f"Python {platform.python_version()}; load average (1 min) {load_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end",
        "",
        "| trial | result |",
        "|---|---|",
        f"| runs killed while a checkpoint was being written | {len(killed)} of {len(results)} starts |",
        f"| `last.ckpt` verified against its SHA-256 after the kill | {verified} of {len(killed)} |",
        f"| kills that left temporary files | {left} of {len(killed)} |",
        f"| of those, swept by the next start | {sum(bool(s) for s in swept)} of {len(swept)} |",
        f"| temporary files left after the final, uninterrupted start | {len(left_at_end)} |",
        f"| resumed run finished with weights bit-identical to an uninterrupted run | {identical} |",
        f"| damaged copies refused, SHA-256 record present | {caught['sha256']} of {args.corruptions} |",
        f"| damaged copies refused, no record (zip CRC32 only) | {caught['crc32']} of {args.corruptions} |",
        f"| `verify` / plain `torch.load` of the {size_mb:.2f} MiB checkpoint | {t_verify * 1e3:.1f} ms / "
        f"{t_load * 1e3:.1f} ms |",
        "",
        "Damage is 1 byte, 2-64 bytes or 65-4096 bytes (one of the three at random) of random values at a random "
        "offset. The CRC32 checksums cover the records' contents, not the zip headers' padding, so a file without "
        "its record can be changed where they do not look; the SHA-256 covers every byte.",
    ]
    failures = [r for r in killed if r["verify"] != "sha256"] + [r for r in results if not r["killed"]]
    for r in failures:
        lines.append(f"- failure: {r}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
