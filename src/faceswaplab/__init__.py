"""faceswaplab: train, run and compare face-swap method families behind one API.

Conventions used throughout the library:

* Image tensors are ``(B, 3, H, W)`` float in ``[-1, 1]``; numpy images are ``(H, W, 3)`` uint8 RGB.
* Landmarks are 68 points in iBUG-300W order, ``(..., 68, 2)`` float ``(x, y)`` in **pixel coordinates of the image
  they belong to**, pixel centres at integers (see :mod:`faceswaplab.faces.template`).
* The **source** gives the identity; the **target** gives pose, expression and background; a swap outputs the
  target with the source's identity.
"""

__version__ = "0.1.0"
