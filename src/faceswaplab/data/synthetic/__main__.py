"""``python -m faceswaplab.data.synthetic --out grid.png``: a grid of synthetic identities x variations."""

from faceswaplab.data.synthetic.grid import main

if __name__ == "__main__":
    main()
