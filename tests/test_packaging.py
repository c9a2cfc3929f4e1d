"""The built wheel in a fresh virtual environment: its console scripts run from another directory with the configs
that ship inside it."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs_a_smoke_training(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("faceswaplab-*.whl")
    env_dir = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, capture_output=True, timeout=300)
    fresh_python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(fresh_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies (torch, dlib, Lightning, ...) come from this environment, which already has them: only the
    # package itself is installed from the wheel, with no access to this checkout.
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(fresh_python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(fresh_python), "-c", "import faceswaplab, faceswaplab.config as c; "
                            "print(faceswaplab.__file__); print(c.CONFIG_DIR)"], cwd=elsewhere, check=True,
                           capture_output=True, text=True).stdout.split()
    assert all(str(ROOT) not in p and p.startswith(str(env_dir)) for p in where), where  # the wheel's files

    out = subprocess.run([str(env_dir / "bin" / "faceswaplab-train"), "method=deepfakes", "debug=smoke",
                          "hydra.run.dir=run"], cwd=elsewhere, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    run = elsewhere / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "preview.png").is_file()
    assert "enc_width: 8" in (run / "config.yaml").read_text()  # the tiny model of debug=smoke
    for script in ("faceswaplab-prepare", "faceswaplab-swap", "faceswaplab-benchmark"):
        help_text = subprocess.run([str(env_dir / "bin" / script), "--help"], cwd=elsewhere, capture_output=True,
                                   text=True, timeout=120)
        assert help_text.returncode == 0 and "Usage: python -m faceswaplab." in help_text.stdout, script
