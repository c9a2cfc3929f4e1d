"""Building a method from its config (``conf/method/<name>.yaml``) without a checkpoint."""

from __future__ import annotations

from typing import Any

from faceswaplab.config import config_dir


def method_names() -> list[str]:
    """The names of ``conf/method/`` (the CLI values of ``method=``)."""
    return sorted(p.stem for p in (config_dir() / "method").glob("*.yaml"))


def method_config(name: str):
    """The config of ``conf/method/<name>.yaml`` (unresolved); ValueError naming the choices when there is none."""
    from omegaconf import OmegaConf

    path = config_dir() / "method" / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown method {name!r}; available: {', '.join(method_names())}")
    return OmegaConf.load(path)


def build_method(method: Any, data: Any = None):
    """An untrained :class:`~faceswaplab.methods.FaceSwapMethod` from a name of ``conf/method/``, a config with
    ``_target_``, or a method (passed through).

    `data` is the data config that the method's config may read (``${data.image_size}``). Methods that need
    training (``trainable = True``) raise ValueError: they come from a checkpoint instead.
    """
    import hydra
    from omegaconf import DictConfig, OmegaConf

    from faceswaplab.methods.base import FaceSwapMethod

    if isinstance(method, FaceSwapMethod):
        return method
    if isinstance(method, str):
        cfg = method_config(method)
    elif isinstance(method, (dict, DictConfig)):
        cfg = OmegaConf.create(method) if isinstance(method, dict) else method
    else:
        raise ValueError(f"method must be a name, a config with _target_ or a FaceSwapMethod, got {method!r}")
    cls = hydra.utils.get_class(str(cfg.get("_target_", "")))
    if getattr(cls, "trainable", True):
        raise ValueError(f"{cls.__name__} must be trained first: pass its run directory or checkpoint")
    merged = OmegaConf.merge({"data": data if data is not None else {}}, {"method": cfg})
    return hydra.utils.instantiate(merged.method)


def method_name(model) -> str:
    """The ``conf/method/`` name of a method: its module's name."""
    return type(model).__module__.rpartition(".")[2]


__all__ = ["build_method", "method_config", "method_name", "method_names"]
