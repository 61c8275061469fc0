"""The public API: sorted `__all__`, and commands that read logs need no TensorFlow."""

import subprocess
import sys

import kgrad


def test_all_is_sorted_and_resolves():
    assert kgrad.__all__ == sorted(kgrad.__all__)
    for name in kgrad.__all__:
        assert getattr(kgrad, name) is not None


def test_importing_kgrad_does_not_import_tensorflow():
    code = "import sys, kgrad, kgrad.report; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
