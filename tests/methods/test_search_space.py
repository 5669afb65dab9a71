"""Every registered method's `search_space` (what `bench tune` samples), and the `Dim` kinds of
`bench.core.search` it is built from.

A space may only name the method's hyperparameters (keys of `defaults`) or the recipe's `lr` /
`weight_decay`; each default must lie inside its range; and every point of the space, its corners
included, must pass the method's hyperparameter rules and `check_run` for a full-length run.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from bench.core.search import RECIPE_KEYS, Choice, Dim, IntUniform, LogUniform, Uniform
from bench.core.specs import OptimSpec
from methods import METHODS

NAMES = METHODS.names()
KINDS = (LogUniform, Uniform, IntUniform, Choice)
#: a full-length run: every method's main phase starts well before it
EPOCHS = 200
#: random points drawn per method, besides the corners
RANDOM_POINTS = 20


def method_class(name: str) -> type:
    return METHODS.get(name)


def space_of(name: str) -> dict[str, Dim]:
    return dict(method_class(name).search_space)


def extremes(dim: Dim) -> list[Any]:
    """The values at the edges of a dim: both ends of a range, every value of a choice."""
    if isinstance(dim, Choice):
        return list(dim.values)
    if isinstance(dim, IntUniform):
        return [int(dim.low), int(dim.high)]
    return [float(dim.low), float(dim.high)]


def sample(dim: Dim, rng: np.random.Generator) -> Any:
    """One value of `dim` as a Python number (a numpy integer would fail the int type check)."""
    if isinstance(dim, LogUniform):
        value = math.exp(rng.uniform(math.log(dim.low), math.log(dim.high)))
        return min(max(value, dim.low), dim.high)  # exp(log(x)) may round past an end
    if isinstance(dim, Uniform):
        return float(rng.uniform(dim.low, dim.high))
    if isinstance(dim, IntUniform):
        return int(rng.integers(dim.low, dim.high + 1))
    return dim.values[int(rng.integers(len(dim.values)))]


def points(name: str) -> list[dict[str, Any]]:
    """Every corner of the space (each dim at an extreme) and `RANDOM_POINTS` random points."""
    space = space_of(name)
    keys = sorted(space)
    corners = [dict(zip(keys, values)) for values in itertools.product(*(extremes(space[k]) for k in keys))]
    rng = np.random.default_rng(0)
    drawn = [{k: sample(space[k], rng) for k in keys} for _ in range(RANDOM_POINTS)]
    return corners + drawn


def method_hparams(point: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in point.items() if k not in RECIPE_KEYS}


# --- the declared spaces ----------------------------------------------------------------------
def test_every_method_is_covered():
    assert len(NAMES) >= 9
    assert {"ce", "dal", "dividemix", "mwnet", "gdw", "famus", "fsr", "dynamic_loss"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_keys_are_hyperparameters_or_recipe(name):
    cls = method_class(name)
    unknown = set(cls.search_space) - set(cls.defaults) - set(RECIPE_KEYS)
    assert not unknown, f"{name}: search_space names {sorted(unknown)}, neither hyperparameters nor {RECIPE_KEYS}"


@pytest.mark.parametrize("name", NAMES)
def test_space_is_small_and_has_the_recipe(name):
    space = space_of(name)
    assert 2 <= len(space) <= 5, f"{name}: {len(space)} keys; a few trials per method cannot cover more"
    for key in RECIPE_KEYS:
        assert key in space, f"{name}: the search space lacks the recipe's {key}"


@pytest.mark.parametrize("name", NAMES)
def test_each_dim_is_a_known_kind(name):
    for key, dim in space_of(name).items():
        assert isinstance(dim, KINDS), f"{name}.{key}: {dim!r} is not one of {[k.__name__ for k in KINDS]}"


@pytest.mark.parametrize("name", NAMES)
def test_dims_match_the_hyperparameter_types(name):
    """Integer hyperparameters are searched with IntUniform (or a choice of integers); float ones
    never with IntUniform; a choice only offers values of the default's type."""
    cls = method_class(name)
    for key, dim in space_of(name).items():
        if key in RECIPE_KEYS:
            assert isinstance(dim, (LogUniform, Uniform)), f"{name}.{key}: a recipe number needs a continuous range"
            continue
        default = cls.defaults[key]
        if isinstance(default, bool) or isinstance(default, str):
            assert isinstance(dim, Choice), f"{name}.{key}: a {type(default).__name__} is searched with Choice"
        elif isinstance(default, int):
            assert isinstance(dim, (IntUniform, Choice)), f"{name}.{key}: an integer is searched with IntUniform"
        elif isinstance(default, float):
            assert not isinstance(dim, IntUniform), f"{name}.{key}: a float is not searched with IntUniform"
        if isinstance(dim, Choice) and default is not None:
            kind = bool if isinstance(default, bool) else type(default)
            assert all(type(v) is kind for v in dim.values), f"{name}.{key}: {dim.values} are not all {kind}"


@pytest.mark.parametrize("name", NAMES)
def test_defaults_lie_inside_their_dims(name):
    cls = method_class(name)
    for key, dim in space_of(name).items():
        if key in RECIPE_KEYS:
            continue
        assert dim.contains(cls.defaults[key]), f"{name}.{key}: default {cls.defaults[key]!r} outside {dim}"
        for dataset, overrides in cls.dataset_defaults.items():
            if key in overrides:
                assert dim.contains(overrides[key]), (f"{name}.{key}: the {dataset} default {overrides[key]!r} "
                                                      f"outside {dim}")


@pytest.mark.parametrize("name", NAMES)
def test_recipe_dims_contain_the_default_recipe(name):
    space, optim = space_of(name), OptimSpec()
    assert space["lr"].contains(optim.lr), f"{name}: lr {optim.lr} outside {space['lr']}"
    assert space["weight_decay"].contains(optim.weight_decay), (f"{name}: weight_decay {optim.weight_decay} "
                                                                f"outside {space['weight_decay']}")


def test_recipe_dims_are_shared():
    """Equal budget: every method searches the same lr and weight decay ranges."""
    lrs = {name: space_of(name)["lr"] for name in NAMES}
    decays = {name: space_of(name)["weight_decay"] for name in NAMES}
    assert len(set(lrs.values())) == 1, lrs
    assert len(set(decays.values())) == 1, decays


@pytest.mark.parametrize("name", NAMES)
def test_every_point_is_a_legal_run(name):
    """Corners and random points: accepted by the method's rules (defaults and the CIFAR-100
    defaults underneath) and by `check_run` for a full-length run."""
    cls = method_class(name)
    space = space_of(name)
    for point in points(name):
        for key, value in point.items():
            assert space[key].contains(value), f"{name}.{key}: sampled {value!r} outside {space[key]}"
        for dataset in (None, "cifar100"):
            resolved = cls.resolve_hparams(method_hparams(point), dataset=dataset)
            cls.check_run(resolved, epochs=EPOCHS)


def test_dal_schedule_always_rises_past_one():
    """DAL's q ranges are disjoint and q_end's lies above 1, so every point rises and bootstraps."""
    space = method_class("dal").search_space
    assert space["q_start"].high < space["q_end"].low
    assert space["q_end"].low > 1.0


def test_fsr_dictionary_holds_every_preset_probe():
    """FSR refuses probe_size > dictionary_size; the smallest |R| searched holds the LT probe (q = 800)."""
    from methods.fsr import FSR_LT, FSR_LT_NOISE

    low = method_class("fsr").search_space["dictionary_size"].low
    for preset in (FSR_LT, FSR_LT_NOISE):
        point = {"dictionary_size": low, "probe_size": preset["probe_size"]}
        method_class("fsr").check_run(method_class("fsr").resolve_hparams(point), epochs=EPOCHS)


def test_variants_inherit_their_methods_space():
    assert method_class("dividemix_bs").search_space == method_class("dividemix").search_space
    for variant in ("dynamic_loss_bs", "dynamic_loss_la"):
        assert method_class(variant).search_space == method_class("dynamic_loss").search_space


# --- bench.core.search itself --------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: LogUniform(0.0, 1.0),
    lambda: LogUniform(-1.0, 1.0),
    lambda: LogUniform(1.0, 1.0),
    lambda: LogUniform(2.0, 1.0),
    lambda: LogUniform(1.0, math.inf),
    lambda: Uniform(1.0, 1.0),
    lambda: Uniform(2.0, 1.0),
    lambda: Uniform(-math.inf, 1.0),
    lambda: Uniform(0.0, math.inf),
    lambda: Uniform(math.nan, 1.0),
    lambda: IntUniform(3, 3),
    lambda: IntUniform(5, 1),
    lambda: IntUniform(1.0, 5),
    lambda: IntUniform(1, 5.0),
    lambda: Choice(()),
    lambda: Choice((1,)),
], ids=["log-zero", "log-negative", "log-equal", "log-inverted", "log-inf", "uni-equal", "uni-inverted",
        "uni-neg-inf", "uni-inf", "uni-nan", "int-equal", "int-inverted", "int-float-low", "int-float-high",
        "choice-empty", "choice-one"])
def test_bad_bounds_raise(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("dim", [LogUniform(1e-3, 1e-1), Uniform(-0.5, 2.0)], ids=str)
def test_continuous_contains_at_the_edges(dim):
    assert dim.contains(dim.low) and dim.contains(dim.high)
    assert not dim.contains(math.nextafter(dim.low, -math.inf))
    assert not dim.contains(math.nextafter(dim.high, math.inf))
    assert dim.contains((dim.low + dim.high) / 2)
    for bad in (math.nan, math.inf, -math.inf, True, "0.01", None):
        assert not dim.contains(bad)


def test_uniform_contains_an_integer_inside():
    assert Uniform(0.0, 1.0).contains(0) and Uniform(0.0, 1.0).contains(1)
    assert not Uniform(0.0, 1.0).contains(2)


def test_int_uniform_contains_only_whole_numbers_inside():
    dim = IntUniform(1, 5)
    assert dim.contains(1) and dim.contains(5) and dim.contains(3)
    assert not dim.contains(0) and not dim.contains(6)
    assert not dim.contains(3.0) and not dim.contains(True) and not dim.contains(np.float64(3))


def test_choice_contains_its_values_only():
    dim = Choice((0.0, 25.0))
    assert dim.contains(0.0) and dim.contains(25.0)
    assert not dim.contains(12.5) and not dim.contains("25")


def test_dims_print_their_range():
    assert str(LogUniform(1e-5, 1e-2)) == "log-uniform [1e-05, 0.01]"
    assert str(Uniform(0.4, 0.8)) == "uniform [0.4, 0.8]"
    assert str(IntUniform(1000, 5000)) == "integer in [1000, 5000]"
    assert str(Choice((0.0, 0.1))) == "one of 0.0, 0.1"
