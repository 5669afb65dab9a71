"""Hyperparameter rules: types from the defaults, choices and ranges, layered overrides."""
import pytest

from bench.core.errors import UsageError
from bench.core.hparams import Range, check_value, resolve

DEFAULTS = {"lr": 0.1, "steps": 3, "mode": "a", "flag": True, "batch": None}
RULES = {"lr": Range(gt=0, le=1), "steps": Range(ge=1), "mode": ("a", "b"), "batch": Range(ge=1)}


def test_layers_apply_in_order_and_every_value_is_checked():
    assert resolve("m", DEFAULTS, RULES, {"lr": 1}, {"lr": 0.5, "batch": 8}) == {**DEFAULTS, "lr": 0.5, "batch": 8}
    assert resolve("m", DEFAULTS, RULES, None)["batch"] is None  # a None default accepts None
    with pytest.raises(UsageError, match="m has no hyperparameter 'mdoe' \\(did you mean 'mode'\\?\\)"):
        resolve("m", DEFAULTS, RULES, {"mdoe": "a"})


@pytest.mark.parametrize("key,value,message", [
    ("lr", 0.0, "lr must be > 0 and <= 1"), ("lr", 2, "lr must be > 0 and <= 1"), ("lr", "0.1", "a number"),
    ("lr", float("inf"), "a number"), ("steps", 0, ">= 1"), ("steps", 1.5, "an integer"), ("steps", True, "an integer"),
    ("mode", "c", "one of 'a', 'b'"), ("flag", 1, "true or false"), ("batch", 0, ">= 1"),
])
def test_a_value_out_of_its_rule_or_type_is_named(key, value, message):
    with pytest.raises(UsageError, match=message):
        check_value("m", key, value, DEFAULTS[key], RULES.get(key))


def test_range_bounds_are_open_or_closed_as_declared():
    assert Range(gt=0).contains(1e-9) and not Range(gt=0).contains(0)
    assert Range(ge=0, lt=1).contains(0) and not Range(ge=0, lt=1).contains(1)
    assert str(Range(ge=0, lt=1)) == ">= 0 and < 1" and str(Range()) == "any number"
