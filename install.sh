#!/usr/bin/env bash
# Set up faceswaplab in ./.venv on a fresh machine (idempotent: a rerun only checks what is installed).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
# face-alignment declares the GUI OpenCV build, which would overwrite opencv-python-headless: install it alone.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt face-alignment
