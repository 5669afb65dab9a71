"""The held-out noisy validation split (`DataSpec.val_fraction`) against independent computations: its size per
noisy class (round half up, at least 1, never a class's last image), that it is carved from the noisy labels after
the long tail and the noise (so train ∪ val is the f = 0 training set), its determinism, the spec's validation, and
that a method never sees it."""
from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import torch
from helpers import digits_run

from bench.core.errors import UsageError
from bench.train.engine import build_method
from noisytail_datasets import DataSpec, build_data, describe, load_base
from noisytail_datasets.build import STAGE_VAL, validation_split
from noisytail_datasets.bundle import _TENSOR_FIELDS

ORDERS = ("lt-noise", "meta-noise-lt")
C = 10


def _spec(order: str = "lt-noise", **kw) -> DataSpec:
    base = dict(dataset="digits", imbalance=10, noise="sym", noise_rate=0.4, order=order, meta_per_class=10)
    base.update(kw)
    return DataSpec(**base)


def _wanted_size(fraction: float, n: int) -> int:
    """round-half-up(f·n) in decimal arithmetic on f as written, at least 1, at most n − 1; 0 when n < 2."""
    if n < 2 or fraction <= 0:
        return 0
    rounded = int((Decimal(str(fraction)) * n).to_integral_value(rounding=ROUND_HALF_UP))
    return min(n - 1, max(1, rounded))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy()


# --- validation_split itself, on hand-made labels ---------------------------------------------------------------

def test_validation_split_sizes_on_hand_made_labels():
    # class sizes: 0 -> 1 (too small: none), 1 -> 2, 2 -> 0 (absent), 3 -> 7, 4 -> 10, 5 -> 5
    sizes = {0: 1, 1: 2, 2: 0, 3: 7, 4: 10, 5: 5}
    labels = np.concatenate([np.full(n, c) for c, n in sizes.items()])
    labels = labels[np.random.default_rng(7).permutation(len(labels))]
    for fraction in (0.01, 0.1, 0.3, 0.5):
        held = validation_split(labels, 6, fraction, np.random.default_rng(0))
        assert held.dtype == np.int64
        assert np.all(np.diff(held) > 0), "sorted positions, no repeats"
        got = np.bincount(labels[held], minlength=6)
        want = [_wanted_size(fraction, sizes[c]) for c in range(6)]
        assert got.tolist() == want, fraction
    # a class of 2 at f = 0.5 gives one (not both); of 1, none; f = 0.01 still gives one per class of >= 2
    assert np.bincount(labels[validation_split(labels, 6, 0.5, np.random.default_rng(0))], minlength=6)[:2].tolist() \
        == [0, 1]


def test_validation_split_never_takes_a_class_whole_even_above_one_half():
    labels = np.array([0, 0, 1, 1, 1, 2])
    held = validation_split(labels, 3, 0.9, np.random.default_rng(1))  # round(1.8) = 2, round(2.7) = 3: clamped
    assert np.bincount(labels[held], minlength=3).tolist() == [1, 2, 0]


def test_validation_split_fraction_zero_is_empty_and_draws_nothing():
    labels = np.arange(20) % 4
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    held = validation_split(labels, 4, 0.0, rng)
    assert len(held) == 0 and held.dtype == np.int64
    assert rng.bit_generator.state == before


def test_validation_split_is_the_first_of_one_permutation_per_class_in_class_order():
    labels = np.random.default_rng(11).integers(0, 5, size=200)
    held = validation_split(labels, 5, 0.2, np.random.default_rng(42))
    rng = np.random.default_rng(42)
    want = []
    for c in range(5):
        perm = rng.permutation(np.flatnonzero(labels == c))
        want.append(perm[: _wanted_size(0.2, len(perm))])
    assert held.tolist() == sorted(np.concatenate(want).tolist())


def test_half_way_sizes_round_up_as_the_fraction_is_written():
    """round-half-up of f·n_c for f as written: 0.35·90 = 31.5 -> 32 and 0.29·50 = 14.5 -> 15.

    (A float computation, floor(0.35 * 90 + 0.5), gives 31: 0.35 * 90 == 31.499999999999996 in binary floating
    point. Digits lt-noise, ρ = 10, sym 0.4 has a noisy class of exactly 90 images.)"""
    for fraction, n in ((0.35, 90), (0.29, 50), (0.35, 170)):
        labels = np.zeros(n, dtype=np.int64)
        held = validation_split(labels, 1, fraction, np.random.default_rng(0))
        assert len(held) == _wanted_size(fraction, n), (fraction, n)


# --- the split in build_data ------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.1, 0.25, 0.3, 0.5])
def test_val_sizes_per_noisy_class_match_an_independent_computation(order, fraction):
    full = build_data(_spec(order))
    split = build_data(_spec(order, val_fraction=fraction))
    n_noisy = np.bincount(_np(full.train_y), minlength=C)
    want = [_wanted_size(fraction, int(n)) for n in n_noisy]
    assert np.bincount(_np(split.val_y), minlength=C).tolist() == want
    assert split.noisy_counts == (n_noisy - np.array(want)).tolist()
    info = describe(split)
    assert info["val_size"] == sum(want) and info["train_size"] == len(full.train_y) - sum(want)


@pytest.mark.parametrize("order", ORDERS)
def test_val_is_the_documented_draw_on_the_noisy_labels(order):
    """Stage VAL: per noisy class, in class order, the first k of a permutation of its positions in the f = 0
    training set (which is in source-index order)."""
    full = build_data(_spec(order, data_seed=3))
    split = build_data(_spec(order, data_seed=3, val_fraction=0.2))
    noisy = _np(full.train_y)
    rng = np.random.default_rng([3, STAGE_VAL])
    parts = []
    for c in range(C):
        perm = rng.permutation(np.flatnonzero(noisy == c))
        parts.append(perm[: _wanted_size(0.2, len(perm))])
    held = np.sort(np.concatenate(parts))
    assert _np(split.val_source_index).tolist() == _np(full.train_source_index)[held].tolist()


@pytest.mark.parametrize("order", ORDERS)
def test_val_is_disjoint_and_train_plus_val_is_the_unsplit_training_set(order):
    full = build_data(_spec(order))
    split = build_data(_spec(order, val_fraction=0.2))
    train_src, val_src = _np(split.train_source_index), _np(split.val_source_index)
    meta_src = _np(split.meta_source_index)
    assert len(val_src) > 0
    assert len(np.unique(val_src)) == len(val_src)
    assert len(np.intersect1d(train_src, val_src)) == 0
    assert len(np.intersect1d(meta_src, val_src)) == 0
    # train ∪ val is the f = 0 training set, each image with the same noisy and true label
    union = np.concatenate([train_src, val_src])
    order_ = np.argsort(union)
    assert np.array_equal(union[order_], _np(full.train_source_index))  # f = 0: in source-index order
    noisy = np.concatenate([_np(split.train_y), _np(split.val_y)])[order_]
    true = np.concatenate([_np(split.train_true_y), _np(split.val_true_y)])[order_]
    assert np.array_equal(noisy, _np(full.train_y))
    assert np.array_equal(true, _np(full.train_true_y))
    # what remains of the training set keeps the f = 0 order; meta and test sets are untouched
    assert np.all(np.diff(train_src) > 0)
    assert torch.equal(split.meta_source_index, full.meta_source_index) and torch.equal(split.meta_y, full.meta_y)
    assert split.meta_from_train == full.meta_from_train
    assert torch.equal(split.test_y, full.test_y) and torch.equal(split.test_x, full.test_x)


@pytest.mark.parametrize("order", ORDERS)
def test_val_images_and_labels_are_the_noisy_ones_of_those_images(order):
    full = build_data(_spec(order))
    split = build_data(_spec(order, val_fraction=0.25))
    base = load_base("digits")
    val_src = _np(split.val_source_index)
    pos = np.searchsorted(_np(full.train_source_index), val_src)  # where each val image sat in the f = 0 set
    assert np.array_equal(_np(full.train_source_index)[pos], val_src)
    assert np.array_equal(_np(split.val_y), _np(full.train_y)[pos])  # noisy labels
    assert np.array_equal(_np(split.val_true_y), base.train_y[val_src])
    assert np.array_equal(_np(split.val_x), base.train_x[val_src])
    assert np.array_equal(_np(split.train_x), base.train_x[_np(split.train_source_index)])
    wrong = _np(split.val_y) != _np(split.val_true_y)
    assert 0 < wrong.sum() < len(wrong)  # at 40% sym noise the split holds both clean and noisy labels
    assert describe(split)["val_noise_rate_realized"] == pytest.approx(wrong.mean())
    for name in ("val_x", "val_y", "val_true_y", "val_source_index"):
        assert getattr(split, name).dtype == (torch.uint8 if name.endswith("_x") else torch.int64), name


@pytest.mark.parametrize("order", ORDERS)
def test_val_split_is_deterministic_in_the_spec_and_moves_with_the_data_seed(order):
    a = build_data(_spec(order, val_fraction=0.2))
    np.random.seed(5)
    torch.manual_seed(5)
    b = build_data(_spec(order, val_fraction=0.2))
    for name in _TENSOR_FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    c = build_data(_spec(order, val_fraction=0.2, data_seed=1))
    assert not torch.equal(a.val_source_index, c.val_source_index)


def test_no_split_at_fraction_zero():
    bundle = build_data(_spec())
    for name in ("val_y", "val_true_y", "val_source_index"):
        assert len(getattr(bundle, name)) == 0, name
    assert bundle.val_x is not None and len(bundle.val_x) == 0
    info = describe(bundle)
    assert "val_size" not in info and "val_noise_rate_realized" not in info


def test_a_larger_fraction_extends_the_smaller_split():
    """Both splits are prefixes of the same per-class permutations (the VAL stage does not depend on f)."""
    small = build_data(_spec(val_fraction=0.1))
    large = build_data(_spec(val_fraction=0.3))
    assert set(_np(small.val_source_index)) <= set(_np(large.val_source_index))


# --- the spec ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [-0.1, 0.6, True, "x", float("nan"), None])
def test_bad_val_fraction_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="validation fraction"):
        _spec(val_fraction=bad).validate()


@pytest.mark.parametrize("good", [0, 0.0, 0.2, 0.5])
def test_val_fraction_bounds_are_accepted(good):
    _spec(val_fraction=good).validate()


def test_val_fraction_is_in_the_run_id_only_when_set():
    cfg = digits_run()
    assert cfg.data.val_fraction == 0
    with_zero = cfg.with_(data=dataclasses.replace(cfg.data, val_fraction=0.0))
    with_split = cfg.with_(data=dataclasses.replace(cfg.data, val_fraction=0.1))
    other_split = cfg.with_(data=dataclasses.replace(cfg.data, val_fraction=0.2))
    assert with_zero.run_id == cfg.run_id
    assert len({cfg.run_id, with_split.run_id, other_split.run_id}) == 3
    assert with_split.to_dict()["data"]["val_fraction"] == 0.1


# --- the method never sees the split ----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["ce", "mwnet"])
def test_method_context_holds_the_training_set_without_the_split(method):
    cfg = digits_run(method, val_fraction=0.3)
    bundle = build_data(cfg.data)
    full = build_data(dataclasses.replace(cfg.data, val_fraction=0.0))
    ctx = build_method(cfg, bundle, torch.device("cpu"), torch.Generator().manual_seed(0)).ctx
    n_train, n_val = len(bundle.train_y), len(bundle.val_y)
    assert n_val > 0 and n_train + n_val == len(full.train_y)
    assert len(ctx.train_y) == n_train and torch.equal(ctx.train_y, bundle.train_y)
    assert sum(ctx.noisy_counts) == n_train and ctx.noisy_counts == bundle.noisy_counts
    assert ctx.steps_per_epoch == -(-n_train // cfg.batch_size)
    assert len(ctx.train_images) == n_train and torch.equal(ctx.train_x, bundle.train_x)
    assert torch.equal(ctx.diagnostics._true, bundle.train_true_y)  # clean-label scoring: the same training images
    # no validation image among the training images: by source index, and by the pixels themselves for every
    # validation image that has no duplicate in the base training set
    base = load_base("digits")
    assert not set(_np(bundle.val_source_index)) & set(_np(bundle.train_source_index))
    flat = base.train_x.reshape(len(base.train_x), -1)
    _, first, counts = np.unique(flat, axis=0, return_index=True, return_counts=True)
    unique_src = set(first[counts == 1].tolist())
    train_rows = {row.tobytes() for row in _np(ctx.train_x).reshape(n_train, -1)}
    checked = 0
    for src, img in zip(_np(bundle.val_source_index), _np(bundle.val_x).reshape(n_val, -1)):
        if int(src) in unique_src:
            assert img.tobytes() not in train_rows, int(src)
            checked += 1
    assert checked > n_val // 2
    if ctx.meta_y is not None:  # the meta set is the one the f = 0 run has
        assert torch.equal(ctx.meta_y, full.meta_y)
