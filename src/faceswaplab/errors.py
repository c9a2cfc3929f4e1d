"""The project's expected errors, and the wrapper that turns them into one line on the command line.

An *expected* error is one a user can fix from its message: a bad config value or type, a missing input file, a
corrupt or mismatched checkpoint, a full disk. Library code raises :class:`FaceSwapLabError` (or a subclass, such
as :class:`faceswaplab.checkpoints.CheckpointError`) with a message naming the file or config key and the reason.
Entry points wrap their ``main`` in :func:`one_line_errors`, under ``hydra.main``::

    @hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
    @one_line_errors
    def main(cfg): ...

Set ``FACESWAPLAB_DEBUG=1`` (or Hydra's ``HYDRA_FULL_ERROR=1``) to get the traceback instead.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class FaceSwapLabError(Exception):
    """An expected failure with a one-line message naming the file or config key and the reason."""


class ConfigError(FaceSwapLabError, ValueError):
    """A config value that cannot be used (wrong type, out of range, contradicting a checkpoint)."""


def debug_tracebacks() -> bool:
    """Whether the user asked for full tracebacks (``FACESWAPLAB_DEBUG=1`` or ``HYDRA_FULL_ERROR=1``)."""
    return any(os.environ.get(k, "") not in ("", "0") for k in ("FACESWAPLAB_DEBUG", "HYDRA_FULL_ERROR"))


def one_line(error: BaseException) -> str | None:
    """The one-line message for an expected error, or None for an unexpected one (a bug: keep its traceback).

    >>> one_line(ConfigError("trainer.max_epochs: expected an integer, got 'abc'"))
    "trainer.max_epochs: expected an integer, got 'abc'"
    >>> one_line(OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoints/last.ckpt"))
    'disk full writing /runs/x/checkpoints/last.ckpt: No space left on device'
    >>> one_line(KeyError("state_dict")) is None
    True
    """
    from hydra.errors import HydraException, InstantiationException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, InstantiationException) and isinstance(error.__cause__, (ValueError, TypeError)):
        # Hydra wraps a constructor's ValueError in a multi-line message; the constructor's own message says it.
        target = str(error).split("'")[1] if str(error).count("'") >= 2 else "a config target"
        return _flat(f"{target}: {error.__cause__}")
    if isinstance(error, FaceSwapLabError):
        return _flat(str(error))
    if isinstance(error, OmegaConfBaseException):
        key = getattr(error, "full_key", None)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return _flat(f"{key}: {reason}" if key and key not in reason else reason)
    if isinstance(error, HydraException):
        return _flat(str(error))
    if isinstance(error, OSError):
        where = " ".join(str(f) for f in (error.filename, error.filename2) if f)
        if error.errno == errno.ENOSPC:
            return f"disk full writing {where or '(unknown file)'}: {error.strerror}"
        if error.strerror:
            return f"{where}: {error.strerror}" if where else error.strerror
        return _flat(str(error))
    return None


def _flat(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def one_line_errors(main: F) -> F:
    """Wrap a command-line ``main``: an expected error (see :func:`one_line`) is logged as one line and the
    process exits with status 1; anything else, or any error with :func:`debug_tracebacks` on, propagates."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - sorted into expected and unexpected below
            message = one_line(e)
            if message is None or debug_tracebacks():
                raise
            print(f"error: {message}", file=sys.stderr, flush=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def require_values(cfg, keys, usage: str) -> None:
    """Refuse a command whose required `keys` are missing (``???``), with one line naming them and `usage`."""
    from omegaconf import OmegaConf

    missing = [k for k in keys if OmegaConf.is_missing(cfg, k)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)}: no value given; usage: {usage}")
