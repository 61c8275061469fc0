"""Each test file a kgrad module's docstring names exists (the house style)."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "kgrad").rglob("*.py"))


def _named_tests(module):
    doc = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))) or ""
    return re.findall(r"tests/[\w/]+\.py", doc)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_test_files_a_module_names_exist(module):
    missing = [path for path in _named_tests(module) if not (ROOT / path).is_file()]
    assert missing == [], f"{module.relative_to(ROOT)} names {missing}"


def test_modules_name_test_files():
    assert sum(bool(_named_tests(m)) for m in MODULES) > 40  # the check reads them
