"""Command-line errors: expected failures are one line and exit status 1; bugs keep their traceback."""

import errno

import hydra
import pytest

from faceswaplab.checkpoints import save
from faceswaplab.errors import one_line_errors


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("FACESWAPLAB_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)


def _fill_disk(tmp):
    with open("/dev/full", "wb", buffering=0) as f:  # the kernel's always-full device: a real ENOSPC
        f.write(b"\0" * 4096)


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    target = tmp_path / "checkpoints" / "last.ckpt"
    main = one_line_errors(lambda: save(_fill_disk, target))
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 1
    assert capsys.readouterr().err == f"error: disk full writing {target}: No space left on device\n"
    assert list(target.parent.iterdir()) == []  # nothing half-written is left
    monkeypatch.setenv("FACESWAPLAB_DEBUG", "1")
    with pytest.raises(OSError) as e:
        main()
    assert e.value.errno == errno.ENOSPC


def test_config_errors_are_flattened_and_bugs_keep_their_traceback(capsys):
    @one_line_errors
    def build():
        hydra.utils.instantiate({"_target_": "faceswaplab.methods.landmark_warp.LandmarkWarp", "blend": "poisson"})

    with pytest.raises(SystemExit):
        build()
    err = capsys.readouterr().err
    assert err.startswith("error: faceswaplab.methods.landmark_warp.LandmarkWarp: blend must be one of")
    assert err.count("\n") == 1

    @one_line_errors
    def bug():
        return {}["state_dict"]

    with pytest.raises(KeyError):
        bug()
