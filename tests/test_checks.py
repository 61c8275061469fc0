"""kgrad.checks: one rule per kind of mistake, Keras-style messages."""

import pathlib

import pytest

from kgrad import checks


@pytest.mark.parametrize(
    "check, args, error",
    [
        (checks.positive_int, (0,), ValueError),
        (checks.positive_int, (True,), TypeError),
        (checks.positive_int, (2.0,), TypeError),
        (checks.non_negative_int, (-1,), ValueError),
        (checks.non_negative_int, (False,), TypeError),
        (checks.positive_number, (0.0,), ValueError),
        (checks.positive_number, (True,), TypeError),
        (checks.number_or_none, (float("nan"),), ValueError),
        (checks.number_or_none, ("1",), TypeError),
        (checks.path_like, ("",), ValueError),
        (checks.path_like, (3,), TypeError),
        (checks.boolean, (1,), TypeError),
        (checks.one_of, ("c", ("a", "b")), ValueError),
        (checks.one_of, (1.5, ("a", "b")), TypeError),
        (checks.number_in, (1.0, "[0, 1)"), ValueError),
        (checks.number_in, (0.0, "(0, 1)"), ValueError),
        (checks.number_in, (True, "[0, 1]"), TypeError),
        (checks.shape, ((8, 0), 2, "(a, b)"), ValueError),
        (checks.shape, ((8, "8"), 2, "(a, b)"), TypeError),
        (checks.shape, (8, 1, "(a,)"), TypeError),
    ],
)
def test_one_rule_per_kind_of_mistake(check, args, error):
    with pytest.raises(error) as info:
        check("arg", *args)
    assert str(info.value).startswith("`arg` must be ")
    assert str(info.value).endswith(f"Received: arg={args[0]!r}")


@pytest.mark.parametrize(
    "check, args",
    [
        (checks.positive_int, (1,)),
        (checks.non_negative_int, (0,)),
        (checks.positive_number, (1e-9,)),
        (checks.number_or_none, (None,)),
        (checks.number_or_none, (-2.5,)),
        (checks.path_like, (pathlib.Path("runs"),)),
        (checks.one_of, (None, ("a", None))),
        (checks.number_in, (0.0, "[0, 1)")),
        (checks.number_in, (1e9, "(1, inf)")),
        (checks.shape, ((None, 3), 2, "(a, b)", (0,))),
    ],
)
def test_valid_values_pass(check, args):
    assert check("arg", *args) is None


def test_int_at_least_names_the_minimum():
    with pytest.raises(ValueError, match=r"`length` must be an integer >= 10\. "):
        checks.int_at_least("length", 9, 10)


def test_positive_ints_checks_each_in_order():
    with pytest.raises(TypeError, match="Received: width=True"):
        checks.positive_ints(depth=2, width=True, heads=0)


def test_suggest_and_known_name():
    assert checks.suggest("dpeth", ["depth", "units"]) == " Did you mean: depth?"
    assert checks.suggest("zzz", ["depth"]) == ""
    with pytest.raises(ValueError) as info:
        checks.known_name("data set", "digit", ("adding", "digits"))
    assert str(info.value) == (
        "Unknown data set 'digit'. Did you mean: digits? Known: adding, digits."
    )


def test_keras_objects():
    checks.activation("activation", "relu")
    checks.initializer("initializer", "he_normal")
    with pytest.raises(ValueError, match="activation='nope'"):
        checks.activation("activation", "nope")
    with pytest.raises(ValueError, match="initializer='nope'"):
        checks.initializer("initializer", "nope")


def test_no_unknown_lists_valid_arguments():
    def build(*, depth=1, width=2, **kwargs):
        checks.no_unknown(build, kwargs)

    build(depth=3)
    with pytest.raises(TypeError) as info:
        build(widht=3)
    assert str(info.value) == (
        "Unknown argument `widht` for `build`. Received: widht=3. "
        "Did you mean: width? Valid arguments: depth, width."
    )
