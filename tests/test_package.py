"""The public API, and the folder boundary: `kgrad.analysis` imports no TensorFlow."""

import pathlib
import subprocess
import sys

import pytest

import kgrad

ANALYSIS = sorted(
    f"kgrad.analysis.{path.stem}"
    for path in pathlib.Path(kgrad.__file__).parent.joinpath("analysis").glob("*.py")
    if path.stem != "__init__"
)


def imported_after(code):
    """The heavy modules in `sys.modules` after `code` runs in a fresh interpreter."""
    probe = (
        f"import sys; {code}; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib', "
        "'matplotlib.pyplot') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_all_is_sorted_and_resolves():
    assert kgrad.__all__ == sorted(kgrad.__all__)
    for name in kgrad.__all__:
        assert getattr(kgrad, name) is not None


def test_public_api_stays():
    from kgrad import GradientMonitor, data, zoo

    assert callable(GradientMonitor)
    assert kgrad.zoo.build is zoo.build
    assert "digits" in data.names()


def test_analysis_folder_is_found():
    assert "kgrad.analysis.report" in ANALYSIS and len(ANALYSIS) >= 5


@pytest.mark.parametrize("module", ANALYSIS)
def test_analysis_module_imports_no_tensorflow_and_no_pyplot(module):
    heavy = imported_after(f"import {module}")
    assert "tensorflow" not in heavy and "keras" not in heavy
    assert "matplotlib.pyplot" not in heavy


@pytest.mark.parametrize(
    "module", ["kgrad.analysis.diagnostics", "kgrad.analysis.report"]
)
def test_diagnosis_needs_no_matplotlib(module):
    assert imported_after(f"import {module}") == "[]"


def test_importing_kgrad_does_not_import_tensorflow():
    assert imported_after("import kgrad") == "[]"


def test_argument_checks_import_no_tensorflow():
    code = "from kgrad import checks; checks.positive_ints(depth=2)"
    assert imported_after(code) == "[]"
