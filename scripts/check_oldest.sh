#!/usr/bin/env bash
# Proves the oldest supported TensorFlow/Keras pair: makes a venv with it,
# installs kgrad (no dependencies) from this checkout, checks that the package
# data is installed, and runs the capture tests, the plain-vs-monitored matrix
# and the Gradients tab's route tests (TensorBoard 2.16) against that venv.
#
#   scripts/check_oldest.sh                 # TF 2.16.1 + Keras 3.13.0
#   TF=2.17.1 KERAS=3.8.0 scripts/check_oldest.sh
#
# Needs network access to PyPI (about 600 MB of wheels) and a few minutes.
set -euo pipefail

TF="${TF:-2.16.1}"
KERAS="${KERAS:-3.13.0}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-${TMPDIR:-/tmp}/kgrad-oldest-tf$TF-keras$KERAS}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q "tensorflow==$TF" "keras==$KERAS" \
    "tensorboard>=2.16,<3" matplotlib pytest
"$VENV/bin/pip" install -q --no-deps --force-reinstall "$ROOT"

cd "${TMPDIR:-/tmp}"  # the installed kgrad, not the checkout
"$VENV/bin/python" - <<'PY'
import keras, tensorflow as tf
from kgrad.lab import digits_file
images, _ = digits_file.load()
print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
      f"installed digits {images.shape}")
PY

cd "$ROOT"
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    tests/test_callback.py tests/test_keras_hooks.py tests/test_workflows.py \
    tests/test_unchanged.py tests/test_dashboard_routes.py
