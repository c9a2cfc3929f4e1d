"""Face-swap methods: one file per method family, each a :class:`FaceSwapMethod` (see :mod:`.base`).

Methods are picked by config (``conf/method/<name>.yaml``, ``_target_`` the class), never registered here; a
checkpoint is reloaded with :func:`load_method` without knowing its class.
"""

from faceswaplab.methods.base import DIRECTIONS, FaceSwapMethod, load_method, preview_grid

__all__ = ["DIRECTIONS", "FaceSwapMethod", "load_method", "preview_grid"]
