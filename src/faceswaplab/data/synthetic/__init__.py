"""A procedural cartoon face renderer: faceswaplab's built-in data set (nothing to download).

Every image comes with exact ground truth: the 68 landmarks *are* the projected 3D points the face is drawn from
(the template :data:`~faceswaplab.faces.template.MEAN_FACE_3D`, deformed per identity and per expression), plus
identity, pose, expression and a face mask; on request an occluder (hand, microphone, hair strands, sunglasses,
mug) covers part of the face and ``visible`` is the face mask less what it hides. Rendering is deterministic:
``SyntheticFaces(seed).sample(i, k)`` gives the same bytes in any process and in any call order.

Pose convention (degrees; x right, y down, z towards the camera; orthographic camera; rotation
``R = Rz(roll) Rx(pitch) Ry(yaw)`` about the crop centre): positive yaw turns the nose towards the image right,
positive pitch lifts the chin (the nose moves up), positive roll tilts the head clockwise in the image.

How it draws: every identity has a *rig*, fixed 3D curves (hair, ears, cranium, glasses, ...) and curves that are
linear in the 68 expressive landmarks (lids, lips, brows, ...). A render deforms the landmarks by the expression,
evaluates the rig (a sparse linear map), rotates and projects everything at once and draws 2D polygons with
anti-aliased OpenCV primitives on a supersampled RGBA canvas, back to front. Face features are drawn on a separate
skin layer that is clipped by the face outline, so features never leave the face (the far eye is cut by the cheek
at large yaw). Shading (wrapped Lambert plus a faint highlight on an ellipsoid head) and the background are
applied at the output resolution.

Command line: ``python -m faceswaplab.data.synthetic --out grid.png`` writes a grid of identities x variations.
"""

from faceswaplab.data.synthetic.grid import main, render_grid  # noqa: F401  (main: the grid command)
from faceswaplab.data.synthetic.identity import HAIR_STYLES, Identity, make_identity, neutral_identity
from faceswaplab.data.synthetic.occluders import OCCLUDERS
from faceswaplab.data.synthetic.lighting import Background, Light, random_background, random_light
from faceswaplab.data.synthetic.render import FaceRender, SyntheticFaces
from faceswaplab.data.synthetic.shape import _expression_model, _expressive_face  # noqa: F401  (tests compare them)

__all__ = [
    "Background", "FaceRender", "HAIR_STYLES", "Identity", "Light", "OCCLUDERS", "SyntheticFaces", "make_identity",
    "neutral_identity", "random_background", "random_light", "render_grid",
]
