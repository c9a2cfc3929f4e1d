"""Offline behaviour: missing weights or packages name what is needed; every other metric still runs."""

import importlib.util

import numpy as np
import pytest
import torch

from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.metrics import (
    DependencyUnavailable, MetricUnavailable, WeightsUnavailable, build_embedder, build_metrics,
)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Point the torch cache and faceswaplab's cache at empty folders: the real lookup code paths, no weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FACESWAPLAB_CACHE", str(tmp_path / "fsl"))
    return tmp_path


def test_facenet_missing_weights_named_before_any_download(empty_caches):
    with pytest.raises(WeightsUnavailable) as e:
        build_embedder("facenet")
    # facenet-pytorch keeps its weights in $TORCH_HOME/checkpoints (not hub/checkpoints)
    assert e.value.path == empty_caches / "torch" / "checkpoints" / "20180402-114759-vggface2.pt"
    assert "20180402-114759-vggface2.pt" in str(e.value) and "pretrained='vggface2'" in str(e.value)
    assert not (empty_caches / "torch").exists()  # facenet-pytorch never ran (it would create the folder)


def test_arcface_needs_onnxruntime_and_a_model_file(tmp_path):
    if importlib.util.find_spec("onnxruntime") is None:
        with pytest.raises(DependencyUnavailable, match="pip install onnxruntime") as e:
            build_embedder("arcface", model_path=str(tmp_path / "w600k_r50.onnx"))
        assert "model_path" in str(e.value)
    else:
        with pytest.raises(WeightsUnavailable, match="w600k_r50.onnx"):
            build_embedder("arcface", model_path=str(tmp_path / "w600k_r50.onnx"))


def test_synthetic_embedder_ships_with_the_package_and_other_configs_name_the_command(empty_caches):
    from faceswaplab.metrics.embedders import ASSETS, synthetic_weights_path

    assert synthetic_weights_path().parent == ASSETS  # found without any cache
    assert build_embedder("synthetic").dim == 128
    with pytest.raises(WeightsUnavailable, match="python -m faceswaplab.metrics.embedder_auc --train"):
        build_embedder("synthetic", weights_path=None, config={"epochs": 1})
    assert synthetic_weights_path({"epochs": 1}).parent == empty_caches / "fsl"


def test_build_metrics_reports_unavailable_and_builds_the_rest(empty_caches):
    metrics, unavailable = build_metrics(image_size=64, options={"kid": {"subset_size": 2}})
    assert {"lpips", "background_lpips", "fid", "kid"} == set(unavailable)
    assert "alexnet-owt-7be5be79.pth" in unavailable["lpips"]
    assert "inception" in unavailable["fid"].lower()
    assert set(metrics) == {"landmark_nme", "pose_error", "expression_error", "pose_error_source",
                            "expression_error_source", "ssim", "psnr", "identity_similarity", "identity_retrieval",
                            "identity_retrieval_top5", "identity_match", "face_detected", "identity_fd"}
    # the available metrics run
    faces = SyntheticFaces(0, 2)
    rs = [faces.sample(i, 0, 64) for i in range(2)]
    x = torch.as_tensor(np.stack([r.image for r in rs])).permute(0, 3, 1, 2).float() / 127.5 - 1
    lm = torch.as_tensor(np.stack([r.landmarks for r in rs]))
    metrics["ssim"].update(x, x)
    metrics["pose_error"].update(torch.as_tensor(np.stack([r.pose for r in rs])), output_landmarks=lm)
    assert float(metrics["ssim"].compute()) == pytest.approx(1.0, abs=1e-5)
    assert float(metrics["pose_error"].compute()) < 5.0


def test_build_metrics_with_dlib_embedder_shares_it(empty_caches):
    metrics, unavailable = build_metrics(["identity_similarity", "identity_retrieval", "lpips"], embedder="dlib")
    assert set(metrics) == {"identity_similarity", "identity_retrieval"} and set(unavailable) == {"lpips"}
    assert metrics["identity_similarity"].embedder is metrics["identity_retrieval"].embedder
    with pytest.raises(ValueError, match="unknown metrics"):
        build_metrics(["fidd"])
    with pytest.raises(ValueError, match="image_size"):
        build_metrics(["pose_error"])


def test_unavailable_errors_share_one_base():
    assert issubclass(WeightsUnavailable, MetricUnavailable) and issubclass(DependencyUnavailable, MetricUnavailable)
    from faceswaplab.faces.backends import MissingWeightsError

    assert issubclass(WeightsUnavailable, MissingWeightsError)  # callers catching the backends' error catch ours
