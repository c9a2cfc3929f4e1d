"""The notebooks run top to bottom in a real kernel and produce what they promise."""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

from conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"


def run_notebook(name: str, out: Path, monkeypatch) -> tuple[str, int]:
    """Execute notebooks/<name> in notebooks/ with its outputs under `out`: (all printed text, number of images)."""
    monkeypatch.setenv("FACESWAPLAB_NOTEBOOK_OUT", str(out))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel is a second process on a small machine
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{name} is stored with outputs"
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError naming the cell on any error
    texts, figures = [], 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                texts.append(output.text)
            elif output.output_type in ("display_data", "execute_result"):
                figures += "image/png" in output.data
                texts.append(output.data.get("text/plain", ""))
    return "".join(texts), figures


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return im.size


@pytest.mark.slow
def test_quickstart_notebook(tmp_path, monkeypatch):
    text, figures = run_notebook("01_quickstart.ipynb", tmp_path, monkeypatch)
    run = tmp_path / "01_quickstart" / "deepfakes_run"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "preview.png").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    assert "swapped: 4 (64, 64, 3) uint8" in text
    assert _image_size(tmp_path / "01_quickstart" / "swaps.png") == (600, 500)
    assert figures == 3  # the synthetic faces, the preview and the swaps


@pytest.mark.slow
def test_your_own_data_notebook(tmp_path, monkeypatch, media):
    monkeypatch.setenv("FACESWAPLAB_MEDIA", str(media))
    text, figures = run_notebook("03_your_own_data.ipynb", tmp_path, monkeypatch)
    out = tmp_path / "03_your_own_data"
    assert "prepared 11 faces of 1 identity from 11 images/frames" in text  # the photo folder
    faces_b = int(re.search(r"prepared (\d+) faces of 1 identity from 36 images/frames", text).group(1))
    assert faces_b >= 30  # the video, 5 of its 30 frames per second
    assert len((out / "deepfakes_run" / "metrics.jsonl").read_text().splitlines()) == 8  # epochs
    assert "wrote 0 images and 1 videos; swapped 8 faces in 8 images/frames" in text
    assert "frames in the output: 8" in text
    assert "swapped crops: ['64x64 RGB', '64x64 RGB', '64x64 RGB', '64x64 RGB']" in text
    assert (out / "swapped.mp4").is_file() and _image_size(out / "frame.png") == (640, 320)
    assert figures == 4  # the crops, the preview, the video frame and the swapped crops


@pytest.mark.slow
def test_compare_methods_notebook(tmp_path, monkeypatch):
    text, figures = run_notebook("02_compare_methods.ipynb", tmp_path, monkeypatch)
    bench = tmp_path / "02_compare_methods" / "benchmark"
    assert "['target', 'source', 'source_other', 'landmark_warp', 'deepfakes']" in text
    rows = [json.loads(line) for line in (bench / "results.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["target", "source", "source_other", "landmark_warp", "deepfakes"]
    assert all(f"{r['method']:>14}: identity " in text for r in rows)  # read back and printed
    assert "| deepfakes |" in (bench / "results.md").read_text()
    assert (tmp_path / "02_compare_methods" / "models" / "deepfakes" / "checkpoints" / "last.ckpt").is_file()
    assert figures == 2  # the plots side by side, the samples
