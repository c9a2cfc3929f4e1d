"""The grid command: ``python -m faceswaplab.data.synthetic --out grid.png`` (identities x variations)."""

from __future__ import annotations

import argparse

import numpy as np

from faceswaplab.data.synthetic.render import SyntheticFaces


def render_grid(faces: SyntheticFaces, identities: int, columns: int, size: int) -> np.ndarray:
    """A (identities * size, columns * size, 3) grid: column 0 is frontal and neutral, the others are samples."""
    rows = []
    for i in range(identities):
        row = [faces.render(i, size, background=(235, 235, 235)).image]
        row += [faces.sample(i, k, size).image for k in range(columns - 1)]
        rows.append(np.concatenate(row, 1))
    return np.concatenate(rows, 0)


def main(argv: list[str] | None = None) -> None:
    from faceswaplab.io import write_image

    ap = argparse.ArgumentParser(prog="python -m faceswaplab.data.synthetic",
                                 description="Write a grid of synthetic identities (rows) x variations (columns).")
    ap.add_argument("--out", required=True, help="output PNG path")
    ap.add_argument("--identities", type=int, default=8, help="rows: identities 0..N-1 (default 8)")
    ap.add_argument("--columns", type=int, default=6, help="frontal neutral render, then N-1 samples (default 6)")
    ap.add_argument("--size", type=int, default=128, help="pixels per face (default 128)")
    ap.add_argument("--seed", type=int, default=0, help="population seed (default 0)")
    args = ap.parse_args(argv)
    if args.identities < 1 or args.columns < 1:
        ap.error("--identities and --columns must be >= 1")
    if not 16 <= args.size <= 1024:
        ap.error("--size must be in [16, 1024]")
    grid = render_grid(SyntheticFaces(args.seed, args.identities), args.identities, args.columns, args.size)
    write_image(args.out, grid)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")
