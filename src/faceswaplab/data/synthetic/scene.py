"""One render's projected rig and the code that draws it, back to front."""

from __future__ import annotations

import cv2
import numpy as np

from faceswaplab.data.synthetic.draw import (
    _ONE, _SHIFT, _circle, _clipped, _darker, _fill, _hull, _ip, _lines, _mix, _resample, _rgba, _soft_spot,
)
from faceswaplab.data.synthetic.identity import Identity
from faceswaplab.data.synthetic.lighting import Light
from faceswaplab.data.synthetic.rig import _rig, _smooth
from faceswaplab.data.synthetic.shape import _PIVOT, _expressive_face


class _Scene:
    """The projected rig of one render and the code that draws it, back to front."""

    def __init__(self, idn: Identity, expression: np.ndarray, rot: np.ndarray, m_int: np.ndarray, res: int,
                 light: Light, gaze: np.ndarray):
        self.idn, self.expr, self.rot, self.m, self.res = idn, expression, rot, m_int, res
        self.unit = float(np.hypot(m_int[0, 0], m_int[1, 0]))  # internal pixels per template unit
        self.rig = _rig(idn)
        p3 = self.rig.points(_expressive_face(idn, expression))
        q = (p3 - _PIVOT) @ rot.T + _PIVOT
        self.p2 = q[:, :2] @ m_int[:, :2].T + m_int[:, 2]  # (P, 2) internal pixels
        # 2D image offset of the irises for the gaze (a shift in the head's x-y plane)
        self.gaze_px = (rot @ [gaze[0] * 0.05, gaze[1] * 0.025, 0.0])[:2] @ m_int[:, :2].T
        ld = np.asarray(light.direction, np.float64)
        self.light_head = rot.T @ (ld / np.linalg.norm(ld))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.p2[self.rig.parts[name]]

    def faces_camera(self, name: str) -> np.ndarray:
        return self.rig.normals[name] @ self.rot[2]

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        idn, res = self.idn, self.res
        canvas = np.zeros((res, res, 4), np.uint8)
        self.draw_body(canvas)
        self.draw_hair_back(canvas)
        _fill(canvas, self["neck"], _rgba(idn.skin, 0.78))
        self.draw_collar(canvas)
        if idn.hair_style not in ("long", "bob", "afro"):  # otherwise the hair covers them
            self.draw_ears(canvas)
        if idn.glasses:  # the arms go behind the face
            for side in "lr":
                _lines(canvas, self[f"temple_{side}"], _rgba(idn.glasses_color), 0.035 * self.unit)
        # Face layer: skin with all features, composited through the face outline.
        outline = _smooth(_hull(np.concatenate([self["jaw"], self["forehead"], self["cheeks"]])), 3, closed=True)
        face_mask = np.zeros((res, res), np.uint8)
        _fill(face_mask, outline, 255)
        x0, y0 = np.maximum(np.floor(outline.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(outline.max(0)).astype(int) + 3, res)
        if x1 > x0 and y1 > y0:  # (the face can be shifted out of the picture)
            face = np.empty((res, res, 4), np.uint8)
            face[y0:y1, x0:x1] = _rgba(idn.skin)
            self.draw_features(face)
            w = face_mask[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
            canvas[y0:y1, x0:x1] = cv2.blendLinear(face[y0:y1, x0:x1], canvas[y0:y1, x0:x1], w, 1.0 - w)
        # Front hair (not face) and glasses go over it.
        if "bangs" in self.rig.parts:
            self.draw_bangs(canvas, face_mask)
        if idn.glasses:
            self.draw_glasses(canvas)
        return canvas, face_mask

    def draw_body(self, canvas):
        # shoulders do not follow the head: they hang below the crop centre
        m, u = self.m, self.unit
        c = _ip(np.array([0.0, 2.6]) @ m[:, :2].T + m[:, 2])
        cv2.ellipse(canvas, (int(c[0]), int(c[1])), (int(2.0 * u * _ONE), int(0.95 * u * _ONE)), 0, 0, 360,
                    _rgba(self.idn.clothes), -1, cv2.LINE_AA, _SHIFT)

    def draw_collar(self, canvas):
        m, idn = self.m, self.idn
        col = np.array([[-0.62, 1.95], [0.0, 2.25], [0.62, 1.95], [0.8, 2.8], [-0.8, 2.8]]) @ m[:, :2].T + m[:, 2]
        _fill(canvas, col, _rgba(idn.clothes, 0.8))
        inner = np.array([[-0.5, 1.98], [0.0, 2.18], [0.5, 1.98], [0.5, 2.02], [0.0, 2.3], [-0.5, 2.02]])
        _fill(canvas, inner @ m[:, :2].T + m[:, 2], _rgba(idn.skin, 0.7))

    def draw_ears(self, canvas):
        skin = self.idn.skin
        for k in (0, 16):
            _fill(canvas, self[f"ear{k}"], _rgba(skin, 0.92))
            _lines(canvas, self[f"ear_in{k}"], _rgba(skin, 0.68), 0.03 * self.unit)

    def draw_hair_back(self, canvas):
        idn, u = self.idn, self.unit
        col = _rgba(idn.hair)
        shell = _hull(self["shell"])
        curly = idn.hair_style in ("curly", "afro")
        if curly:  # bumpy outline
            for p in _resample(shell, 0.17 * u):
                _circle(canvas, p, 0.12 * u, col)
        _fill(canvas, shell, col)
        if idn.hair_style == "bald":
            return
        dark = _rgba(_darker(idn.hair))
        if curly:
            vis = self.faces_camera("curls") > 0.25
            for p in self["curls"][vis]:
                cv2.ellipse(canvas, tuple(int(v) for v in _ip(p)), (int(0.06 * u * _ONE), int(0.05 * u * _ONE)),
                            0, 200, 470, dark, max(1, int(0.02 * u)), cv2.LINE_AA, _SHIFT)
            return
        sheen = self["sheen"][self.faces_camera("sheen") > 0.3]
        if len(sheen) > 1:
            _lines(canvas, sheen, _rgba(_mix(idn.hair, (255, 255, 255), 0.14)), 0.07 * u)
        strands = [_ip(self[f"strand{k}"]) for k in range(9) if self.faces_camera(f"strand{k}") > 0.15]
        if strands:
            cv2.polylines(canvas, strands, False, dark, max(1, round(0.02 * u)), cv2.LINE_AA, _SHIFT)

    def draw_bangs(self, canvas, face_mask):
        idn = self.idn
        pts = self["bangs"]
        _fill(canvas, pts, _rgba(idn.hair))
        _fill(face_mask, pts, 0)
        dark = _rgba(_darker(idn.hair))
        for k in range(4):
            _lines(canvas, self[f"fringe{k}"], dark, 0.02 * self.unit)

    def draw_glasses(self, canvas):
        col, u = _rgba(self.idn.glasses_color), self.unit
        for side in "lr":
            _lines(canvas, self[f"rim_{side}"], col, 0.04 * u, closed=True)
        _lines(canvas, self["bridge"], col, 0.035 * u)

    def draw_features(self, face):
        idn, u, p = self.idn, self.unit, self.p2
        skin = idn.skin
        if "beard" in self.rig.parts:  # stubble: a shadow of darkened hair colour
            stubble = idn.facial_hair == "stubble"
            col = _mix(skin, _mix(idn.hair, (40, 30, 25), 0.5) if stubble else idn.hair, 0.28 if stubble else 0.85)
            _fill(face, self["beard"], _rgba(col))
        if "moustache" in self.rig.parts:
            _fill(face, self["moustache"], _rgba(_mix(skin, idn.hair, 0.92)))
        # soft shading: blushed cheeks, eye sockets, the hollow under the lower lip
        for side in "lr":
            _soft_spot(face, self[f"blush_{side}"][0], (0.2 * u, 0.16 * u), (235, 90, 90, 255), 0.12)
            _soft_spot(face, self[f"socket_{side}"][0], (0.24 * u, 0.11 * u), _rgba(skin, 0.7), 0.6)
        _soft_spot(face, p[57] + (p[57] - p[51]) * 0.45, (0.16 * u, 0.06 * u), _rgba(skin, 0.75), 0.4)
        # nose: the side away from the light is in shadow
        _fill(face, self["nose_shadow_r" if self.light_head[0] < 0 else "nose_shadow_l"], _rgba(skin, 0.86))
        _lines(face, self["nose_base"], _rgba(skin, 0.75), 0.022 * u)
        for k in (32, 34):
            c = p[k] * 0.7 + p[33] * 0.3 + (p[33] - p[30]) * 0.04
            ang = float(np.degrees(np.arctan2(*(p[35] - p[31])[::-1])))
            cv2.ellipse(face, tuple(int(v) for v in _ip(c)), (int(0.045 * u * _ONE), int(0.022 * u * _ONE)),
                        ang, 0, 360, _rgba(skin, 0.42), -1, cv2.LINE_AA, _SHIFT)
        for k in (31, 35):
            _lines(face, self[f"wing{k}"], _rgba(skin, 0.72), 0.022 * u)
            _lines(face, self[f"fold{k}"], _rgba(skin, 0.96 - 0.12 * self.expr[1]), 0.02 * u)
        self.draw_eyes(face)
        brow_col = _rgba(_mix(idn.hair if np.mean(idn.hair) < 150 else _darker(idn.hair), (40, 30, 25), 0.3))
        for side in "lr":
            self.draw_brow(face, self[f"brow_{side}"], brow_col)
        self.draw_mouth(face)

    def draw_brow(self, face, b, color):
        """A ribbon along `b` (outer to inner end), thicker at the inner end."""
        tang = np.gradient(b, axis=0)
        nrm = np.stack([tang[:, 1], -tang[:, 0]], 1)
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-9
        nrm *= -np.sign(nrm[:, 1].sum() + 1e-9)  # point up in the image
        w = (0.025 + 0.035 * np.linspace(0, 1, len(b)) ** 0.7)[:, None] * self.idn.brow_thickness * self.unit
        _fill(face, np.concatenate([b + nrm * w * 0.6, (b - nrm * w * 0.4)[::-1]]), color)

    def draw_eyes(self, face):
        idn, u = self.idn, self.unit
        skin = idn.skin
        lash = (30, 22, 20, 255)
        for side in "lr":
            upper, lower = self[f"upper_{side}"], self[f"lower_{side}"]
            _lines(face, self[f"crease_{side}"], _rgba(skin, 0.78), 0.018 * u)
            poly = np.concatenate([upper, lower[1:-1]])
            opening = cv2.contourArea(poly.astype(np.float32))
            if opening > 1.0:
                c = self[f"iris_{side}"][0] + self.gaze_px
                open_h = np.ptp(poly[:, 1])
                rad = 0.085 * idn.iris_size * idn.eye_size * u

                def eyeball(patch, o, c=c, upper=upper, open_h=open_h, rad=rad):
                    patch[:] = (238, 234, 228, 255)
                    _circle(patch, c - o, rad, _rgba(idn.iris, 0.68))
                    _circle(patch, c - o, rad * 0.8, _rgba(idn.iris))
                    _circle(patch, c - o, rad * 0.42, (14, 10, 10, 255))
                    _circle(patch, c - o + [-0.3 * rad, -0.35 * rad], rad * 0.17, (252, 252, 252, 255))
                    _lines(patch, upper - o, (150, 128, 122, 255), open_h * 0.3)  # lid shadow on the eyeball

                _clipped(face, poly, eyeball)
            _lines(face, lower, _rgba(skin, 0.7), 0.018 * u)
            _lines(face, upper, lash, 0.035 * u)
            # a flick of lashes at the outer corner (36 starts the left eye's upper lid, 45 ends the right one's)
            lid = upper if side == "l" else upper[::-1]
            flick = lid[0] + (lid[0] - lid[-1]) * 0.12 + [0, -0.03 * u]
            _lines(face, np.stack([lid[3], lid[0], flick]), lash, 0.025 * u)

    def draw_mouth(self, face):
        idn, u, p = self.idn, self.unit, self.p2
        lips = idn.lips
        _fill(face, self["lips"], _rgba(lips))
        inner_up, inner_low = self["inner_up"], self["inner_low"]
        _fill(face, np.concatenate([self["lip_top"], inner_up[::-1]]), _rgba(lips, 0.84))
        if np.linalg.norm(p[66] - p[62]) > 0.02 * u:
            inner = np.concatenate([inner_up, inner_low[1:-1]])

            def mouth(patch, o):
                patch[:] = (70, 22, 28, 255)
                # teeth: a white band under the upper lip, and a little of the lower row
                _fill(patch, np.concatenate([inner_up, inner_up[::-1] + [0, 0.085 * u]]) - o, (240, 238, 228, 255))
                _fill(patch, np.concatenate([inner_low, inner_low[::-1] - [0, 0.04 * u]]) - o, (215, 210, 200, 255))
                _lines(patch, inner_up - o + [0, 0.085 * u], (190, 180, 170, 255), 0.012 * u)

            _clipped(face, inner, mouth)
        _lines(face, inner_up, _rgba(lips, 0.5), 0.022 * u)
        hl = p[57] * 0.6 + p[66] * 0.4  # lower lip highlight
        axes = (int(0.07 * u * idn.mouth_width * _ONE), int(0.025 * u * _ONE))
        angle = float(np.degrees(np.arctan2(*(p[54] - p[48])[::-1])))
        cv2.ellipse(face, tuple(int(v) for v in _ip(hl)), axes, angle, 0, 360, _rgba(lips, 1.12), -1, cv2.LINE_AA,
                    _SHIFT)
        for k in (48, 54):
            _circle(face, p[k], 0.018 * u, _rgba(lips, 0.55))
