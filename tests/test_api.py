"""The library surface: `faceswaplab.load` and `FaceSwapMethod.swap` on tensors, numpy arrays, PIL images and lists."""

import numpy as np
import pytest
import torch
from PIL import Image

import faceswaplab as fsl
from conftest import compose_train
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.faces.alignment import align_face
from faceswaplab.faces.backends import DlibBackend
from faceswaplab.images import to_image, to_tensor
from faceswaplab.methods.landmark_warp import LandmarkWarp
from faceswaplab.train import train

SIZE = 32
TINY_DEEPFAKES = [
    "method=deepfakes", "method.enc_width=8", "method.latent=32", "method.dense_channels=32",
    "method.code_channels=16", "method.dec_width=16", f"data.image_size={SIZE}", "data.batch_size=4",
    "data.num_workers=0", "data.persistent_workers=false", "data.A.num_samples=40", "trainer.max_epochs=1",
    "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false",
    "callbacks.preview.pairs=2",
]


@pytest.fixture(scope="module")
def deepfakes(tmp_path_factory):
    """A DeepFakes autoencoder trained for two steps on 32 px synthetic faces, loaded with `fsl.load`."""
    run = tmp_path_factory.mktemp("deepfakes_run")
    train(compose_train(*TINY_DEEPFAKES, run_dir=run))
    return fsl.load(run, device="cpu")


@pytest.fixture(scope="module")
def faces():
    """Two renders of identity A (0) and one of identity B (1), 32 px: (image, landmarks) each."""
    gen = SyntheticFaces(seed=0)
    return [gen.sample(i, k, size=SIZE) for i, k in ((0, 3), (0, 4), (1, 5))]


def test_swap_gives_back_the_kind_it_was_given(deepfakes, faces):
    assert not deepfakes.training and deepfakes.device.type == "cpu"
    batch_np = np.stack([faces[0].image, faces[1].image])  # (2, H, W, 3) uint8
    batch_t = to_tensor(batch_np)  # (2, 3, H, W) in [-1, 1]

    out_t = deepfakes.swap(batch_t, direction="AtoB")
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (2, 3, SIZE, SIZE) and out_t.dtype == torch.float32
    assert (out_t - batch_t).abs().amax() > 0.05  # it swapped something

    single_t = deepfakes.swap(batch_t[0], direction="AtoB")
    assert single_t.shape == (3, SIZE, SIZE)

    out_np = deepfakes.swap(batch_np, direction="AtoB")
    assert isinstance(out_np, np.ndarray) and out_np.shape == batch_np.shape and out_np.dtype == np.uint8
    single_np = deepfakes.swap(faces[0].image, direction="AtoB")
    assert single_np.shape == (SIZE, SIZE, 3) and single_np.dtype == np.uint8

    out_pil = deepfakes.swap(Image.fromarray(faces[0].image), direction="AtoB")
    assert isinstance(out_pil, Image.Image) and out_pil.size == (SIZE, SIZE) and out_pil.mode == "RGB"

    out_list = deepfakes.swap([faces[0].image, Image.fromarray(faces[1].image)], direction="AtoB")
    assert isinstance(out_list, list) and len(out_list) == 2
    assert isinstance(out_list[0], np.ndarray) and isinstance(out_list[1], Image.Image)

    # The same image gives the same swap whatever its kind (up to uint8 rounding).
    reference = to_image(out_t)  # (2, H, W, 3) uint8
    for got in (to_image(single_t), single_np, np.asarray(out_pil), out_np[0], out_list[0]):
        assert np.abs(got.astype(int) - reference[0]).max() <= 1
    assert np.abs(np.asarray(out_list[1]).astype(int) - reference[1]).max() <= 1
    assert np.array_equal(np.asarray(out_pil), single_np)  # one image, one code path: identical bytes


def test_tensor_swaps_keep_the_graph_and_directions_differ(deepfakes, faces):
    target = to_tensor(faces[0].image)[None].requires_grad_()
    out = deepfakes.swap(target, direction="AtoB")
    out.sum().backward()
    assert target.grad is not None and target.grad.abs().sum() > 0
    a2b = deepfakes.swap(faces[0].image, direction="AtoB")
    b2a = deepfakes.swap(faces[0].image, direction="BtoA")
    assert not np.array_equal(a2b, b2a)


def test_crops_of_another_size_are_resized_to_the_model_and_back(deepfakes):
    """A 4x larger crop (as prepare writes them) goes through a 32 px model and comes back at its own size."""
    gen = SyntheticFaces(seed=0)
    big, small = gen.sample(0, 3, size=4 * SIZE), gen.sample(0, 3, size=SIZE)
    out_big = deepfakes.swap(big.image, target_landmarks=big.landmarks, direction="AtoB")
    out_small = deepfakes.swap(small.image, target_landmarks=small.landmarks, direction="AtoB")
    assert out_big.shape == big.image.shape and out_big.dtype == np.uint8
    # The same swap, drawn at the large size: downscaling it again gives the small crop's swap.
    down = np.asarray(Image.fromarray(out_big).resize((SIZE, SIZE), Image.BOX)).astype(int)
    assert np.abs(down - out_small).mean() < 6
    assert np.abs(down - np.asarray(Image.fromarray(big.image).resize((SIZE, SIZE), Image.BOX))).mean() > 6
    with pytest.raises(ValueError, match="must be square"):
        deepfakes.swap(np.zeros((SIZE, 2 * SIZE, 3), np.uint8), direction="AtoB")


def test_swap_rejects_bad_input_with_clear_errors(deepfakes, faces):
    with pytest.raises(TypeError, match="uint8"):
        deepfakes.swap(faces[0].image.astype(np.float32))
    with pytest.raises(TypeError, match="float in \\[-1, 1\\]"):
        deepfakes.swap(torch.zeros(1, 3, SIZE, SIZE, dtype=torch.uint8))
    with pytest.raises(ValueError, match="share one size"):
        deepfakes.swap([faces[0].image, np.zeros((16, 16, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        deepfakes.swap(np.zeros((SIZE, SIZE), np.uint8))
    with pytest.raises(TypeError, match="got str"):
        deepfakes.swap("face.png")


def test_landmark_warp_swap_is_the_same_for_every_input_kind(faces):
    method = LandmarkWarp(blend="feather")
    t0, t1, s = faces[0], faces[1], faces[2]  # targets: two images of A; source: one image of B
    targets = np.stack([t0.image, t1.image])
    target_lm = np.stack([t0.landmarks, t1.landmarks])

    # Tensors, landmarks as tensors, one source per target.
    out_t = method.swap(to_tensor(targets), to_tensor(np.stack([s.image, s.image])),
                        target_landmarks=torch.from_numpy(target_lm),
                        source_landmarks=torch.from_numpy(np.stack([s.landmarks, s.landmarks])))
    reference = to_image(out_t)
    assert (reference != targets).any(axis=-1).mean() > 0.05  # the face was replaced

    # numpy batch with one shared source and (68, 2) numpy source landmarks.
    out_np = method.swap(targets, s.image, target_landmarks=target_lm, source_landmarks=s.landmarks)
    assert out_np.dtype == np.uint8 and np.array_equal(out_np, reference)

    # PIL single, list of PIL.
    pil = method.swap(Image.fromarray(t1.image), Image.fromarray(s.image), target_landmarks=t1.landmarks,
                      source_landmarks=s.landmarks)
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), reference[1])
    listed = method.swap([Image.fromarray(t0.image), Image.fromarray(t1.image)], [Image.fromarray(s.image)],
                         target_landmarks=target_lm, source_landmarks=s.landmarks)
    assert [type(x) for x in listed] == [Image.Image, Image.Image]
    assert np.array_equal(np.stack([np.asarray(x) for x in listed]), reference)

    with pytest.raises(ValueError, match="2 source images for 3 targets"):
        method.swap(np.stack([t0.image] * 3), targets, target_landmarks=np.stack([t0.landmarks] * 3))
    with pytest.raises(ValueError, match=r"target_landmarks must be \(68, 2\) or \(2, 68, 2\)"):
        method.swap(targets, s.image, target_landmarks=np.zeros((3, 68, 2)), source_landmarks=s.landmarks)


def test_landmark_warp_detects_missing_landmarks_in_pil_crops(astronaut):
    """Real photo crops without landmarks: swap finds them with dlib and matches the tensor path byte for byte."""
    backend = DlibBackend(detector="hog", upsample=1)
    (face,) = backend.faces(astronaut)
    crop, _, _ = align_face(astronaut, face.landmarks, 160)
    mirrored = np.ascontiguousarray(crop[:, ::-1])
    method = LandmarkWarp()
    out = method.swap(Image.fromarray(crop), Image.fromarray(mirrored))
    assert isinstance(out, Image.Image) and out.size == (160, 160)
    expected = to_image(method.swap(to_tensor(crop[None]), to_tensor(mirrored[None])))[0]
    assert np.array_equal(np.asarray(out), expected)
    assert not np.array_equal(np.asarray(out), crop)
    with pytest.raises(ValueError, match="no face found by dlib in target image 0"):
        method.swap(np.full((64, 64, 3), 128, np.uint8), crop)


def test_stable_top_level_names_resolve_lazily():
    import subprocess
    import sys

    import faceswaplab as fsl

    out = subprocess.run([sys.executable, "-c", "import sys, faceswaplab; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # `import faceswaplab` stays light
    for name in fsl.__all__:
        assert callable(getattr(fsl, name)) or name == "__version__", name
    assert fsl.run_benchmark.__module__ == "faceswaplab.benchmarking.run" and fsl.compose.__module__ == "faceswaplab.config"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fsl.nope



def test_compose_works_inside_another_hydra_application(tmp_path):
    """A user's own @hydra.main app composes faceswaplab's configs, and its own Hydra state is intact afterwards."""
    import subprocess
    import sys

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mine.yaml").write_text("answer: 42\n")
    (tmp_path / "app.py").write_text(
        "import hydra\n"
        "from hydra import compose as hydra_compose\n"
        "from faceswaplab.config import compose\n\n"
        "@hydra.main(config_path='conf', config_name='mine', version_base='1.3')\n"
        "def main(cfg):\n"
        "    run = compose('train', ['method=deepfakes', 'data.image_size=32'], output_dir='run')\n"
        "    print(run.method._target_, run.data.image_size, hydra_compose('mine').answer, cfg.answer)\n\n"
        "main()\n")
    out = subprocess.run([sys.executable, "app.py", "hydra.run.dir=out"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["faceswaplab.methods.deepfakes.DeepFakes", "32", "42", "42"]


def test_readme_example_swaps_a_crop_that_prepare_wrote(deepfakes, media, tmp_path):
    """`method.swap(Image.open(<a crop of prepare's output>))`: a 256 px crop through a 32 px model."""
    from faceswaplab.data.preparation import prepare

    prepare(media / "photos" / "biden", tmp_path / "biden", workers=1, progress=False)
    crop = sorted((tmp_path / "biden" / "faces").glob("*.png"))[0]
    face = deepfakes.swap(Image.open(crop), direction="AtoB")
    assert isinstance(face, Image.Image) and face.size == (256, 256) == Image.open(crop).size
