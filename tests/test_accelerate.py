"""Channels-last and torch.compile (faceswaplab.callbacks.Accelerate): same training, same checkpoints."""

import pytest
import torch
from conftest import compose_train, method_class, tiny

from faceswaplab.callbacks import networks
from faceswaplab.methods import load_method
from faceswaplab.training import train


def _run(tmp_path, name, *overrides):
    cfg = compose_train(*tiny("deepfakes", "trainer.max_epochs=1", "~logger", *overrides),
                        run_dir=tmp_path / name)
    out = train(cfg)
    return out, load_method(out["checkpoint"])


def test_networks_look_into_containers():
    cls = method_class("deepfakes")
    method = cls(image_size=32, **cls.tiny)
    found = networks(method)
    # the shared encoder and one decoder per identity, each with weights; never a container
    assert any(net is method.encoder for net in found)
    assert all(not isinstance(net, (torch.nn.ModuleDict, torch.nn.ModuleList)) for net in found)
    assert all(any(True for _ in net.parameters()) for net in found)
    assert sum(p.numel() for net in found for p in net.parameters()) == sum(p.numel() for p in method.parameters())


def test_channels_last_trains_the_same(tmp_path):
    plain, a = _run(tmp_path, "nchw", "callbacks.accelerate.channels_last=false")
    nhwc, b = _run(tmp_path, "nhwc", "callbacks.accelerate.channels_last=true")
    assert a.state_dict().keys() == b.state_dict().keys()
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-4), name  # same arithmetic, another memory layout
    loss = type(a).fit_loss
    assert plain["metrics"][loss] == pytest.approx(nhwc["metrics"][loss], rel=1e-4)


def test_bad_setting_is_refused(tmp_path):
    with pytest.raises(Exception, match="channels_last must be true or false"):
        _run(tmp_path, "bad", "callbacks.accelerate.channels_last=sometimes")


@pytest.mark.slow
def test_compiled_training_keeps_plain_checkpoints(tmp_path):
    plain, a = _run(tmp_path, "eager")
    compiled, b = _run(tmp_path, "compiled", "callbacks.accelerate.compile=true")
    assert a.state_dict().keys() == b.state_dict().keys()  # no _orig_mod. prefixes
    loss = type(a).fit_loss
    assert plain["metrics"][loss] == pytest.approx(compiled["metrics"][loss], rel=1e-3)
