#!/usr/bin/env bash
# Proves the oldest supported TensorFlow/Keras pair: makes a venv with it,
# installs kgrad (no dependencies) from this checkout, checks that the package
# data is installed, and runs tests of every room of the monitor against that
# venv (TensorBoard 2.16), timed:
#
#   drive           tests/test_callback.py
#   train_function  tests/test_keras_hooks.py tests/test_same_trace.py
#   step            tests/test_stats.py tests/test_temporal.py tests/test_per_example.py
#   log             tests/test_run_claim.py tests/test_naming.py (save, load, continue)
#   bit for bit     tests/test_unchanged.py tests/test_workflows.py (plain = monitored)
#   read back       tests/test_tensorboard.py (a TensorBoard server, its routes)
#                   tests/test_report.py (kgrad's reader = TensorBoard's)
#   the tab         tests/test_dashboard_routes.py
#
#   scripts/check_oldest.sh                 # TF 2.16.1 + Keras 3.13.0
#   TF=2.17.1 KERAS=3.14.0 scripts/check_oldest.sh
#
# Needs PyPI (about 600 MB of wheels; pip's own cache and PIP_FIND_LINKS are
# used) and, on 2 cores, about 10 minutes for the tests (docs/INSTALL.md).
set -euo pipefail

TF="${TF:-2.16.1}"
KERAS="${KERAS:-3.13.0}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-${TMPDIR:-/tmp}/kgrad-oldest-tf$TF-keras$KERAS}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TESTS=(
    tests/test_callback.py
    tests/test_keras_hooks.py tests/test_same_trace.py
    tests/test_stats.py tests/test_temporal.py tests/test_per_example.py
    tests/test_run_claim.py tests/test_naming.py
    tests/test_unchanged.py tests/test_workflows.py
    tests/test_tensorboard.py tests/test_report.py
    tests/test_dashboard_routes.py
)

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q "tensorflow==$TF" "keras==$KERAS" \
    "tensorboard>=2.16,<3" matplotlib pytest
"$VENV/bin/pip" install -q --no-deps --force-reinstall "$ROOT"

cd "${TMPDIR:-/tmp}"  # the installed kgrad, not the checkout
"$VENV/bin/python" - <<'PY'
import keras, tensorboard, tensorflow as tf
from kgrad.lab import digits_file
images, _ = digits_file.load()
print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, TensorBoard "
      f"{tensorboard.__version__}, installed digits {images.shape}")
PY

cd "$ROOT"  # the tests import the checkout's kgrad, on these versions
start=$SECONDS
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
echo "check_oldest: tests took $((SECONDS - start)) s"
