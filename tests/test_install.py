"""The install: a version range instead of one TensorFlow, digits shipped as data."""

import configparser
import pathlib

import numpy as np
import pytest

from kgrad.lab import data, digits_file
from kgrad.monitor.requirements import check_tensorflow

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_requirements_are_ranges_and_leave_tensorflow_to_the_environment():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    required = config["options"]["install_requires"].split()
    assert "keras>=3.13,<4" in required and "tensorboard>=2.16,<3" in required
    assert not any(r.startswith(("tensorflow", "scikit-learn")) for r in required)
    extras = config["options.extras_require"]["tensorflow"].split()
    assert extras == ["tensorflow>=2.16.1,<3"]
    assert "datasets/digits.npz" in config["options.package_data"]["kgrad.lab"]


@pytest.mark.parametrize("version", ["2.16.1", "2.18.0", "2.21.0", "2.22.0rc1"])
def test_supported_tensorflow_versions_pass(version):
    check_tensorflow(version)


@pytest.mark.parametrize("version", ["2.15.1", "2.16.0", "1.15.0", "3.0.0"])
def test_unsupported_tensorflow_versions_name_the_fix(version):
    with pytest.raises(ImportError, match=rf"found {version}.*kgrad\[tensorflow\]"):
        check_tensorflow(version)


def test_shipped_digits_are_the_uci_digits():
    images, target = digits_file.load()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert images.max() == 16 and images.min() == 0
    assert np.bincount(target).tolist() == [
        178, 182, 177, 183, 181, 182, 181, 179, 174, 180,
    ]  # fmt: skip


def test_digits_split_is_stratified_and_disjoint():
    _, target = digits_file.load()
    train, test = digits_file.stratified_split(target, 0.2, seed=1)
    assert len(test) == 360 and len(train) == 1437
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(1797))
    share = np.bincount(target[test], minlength=10) / np.bincount(target)
    assert np.all(np.abs(share - 0.2) < 0.01)
    ds = data.digits(test_fraction=0.2, seed=1)
    assert np.array_equal(ds.y_test, target[test])
