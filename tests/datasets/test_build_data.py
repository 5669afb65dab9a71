"""build_data protocol on the bundled digits set: determinism, both orders, meta set, describe()."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bench.core.errors import UsageError
from noisytail_datasets import AugmentSpec, DataSpec, build_data, describe, load_base, long_tail_counts
from noisytail_datasets.bundle import _TENSOR_FIELDS

DESCRIBE_KEYS = {"num_classes", "train_size", "test_size", "meta_size", "clean_counts", "noisy_counts",
                 "noise_rate_realized", "transition_matrix"}


def _equal_bundles(a, b) -> bool:
    same_tensors = all(torch.equal(getattr(a, f), getattr(b, f)) for f in _TENSOR_FIELDS)
    return same_tensors and a.meta_from_train == b.meta_from_train


def _spec(order="lt-noise", **kw) -> DataSpec:
    base = dict(dataset="digits", imbalance=5, noise="sym", noise_rate=0.4, order=order, meta_per_class=5)
    base.update(kw)
    return DataSpec(**base)


def test_digits_base_split():
    base = load_base("digits")
    assert base.train_x.shape == (1297, 1, 8, 8) and base.test_x.shape == (500, 1, 8, 8)
    assert base.train_x.dtype == np.uint8 and base.train_x.max() == 255
    assert (np.bincount(base.test_y) == 50).all()
    assert load_base("digits") is base  # cached in-process


@pytest.mark.parametrize("order", ["lt-noise", "meta-noise-lt"])
def test_same_spec_is_bit_identical(order):
    a = build_data(_spec(order))
    np.random.seed(99)  # global RNG state must not matter
    torch.manual_seed(99)
    np.random.random(10)
    b = build_data(_spec(order))
    assert _equal_bundles(a, b)


@pytest.mark.parametrize("order", ["lt-noise", "meta-noise-lt"])
def test_data_seed_changes_the_bundle(order):
    a, b = build_data(_spec(order)), build_data(_spec(order, data_seed=1))
    assert not torch.equal(a.train_source_index, b.train_source_index)
    assert not torch.equal(a.meta_source_index, b.meta_source_index)


@pytest.mark.parametrize("order", ["lt-noise", "meta-noise-lt"])
def test_meta_disjoint_clean_and_test_untouched(order):
    bundle = build_data(_spec(order))
    base = load_base("digits")
    train_idx, meta_idx = bundle.train_source_index.numpy(), bundle.meta_source_index.numpy()
    assert len(np.intersect1d(train_idx, meta_idx)) == 0
    assert len(np.unique(train_idx)) == len(train_idx)
    assert np.array_equal(bundle.meta_y.numpy(), base.train_y[meta_idx])
    assert (np.bincount(bundle.meta_y.numpy(), minlength=10) == 5).all()
    assert np.array_equal(bundle.meta_x.numpy(), base.train_x[meta_idx])
    assert np.array_equal(bundle.train_x.numpy(), base.train_x[train_idx])
    assert np.array_equal(bundle.train_true_y.numpy(), base.train_y[train_idx])
    assert np.array_equal(bundle.test_x.numpy(), base.test_x) and np.array_equal(bundle.test_y.numpy(), base.test_y)
    for name in _TENSOR_FIELDS:
        t = getattr(bundle, name)
        assert t.dtype == (torch.uint8 if name.endswith("_x") else torch.int64), name
    bundle.test_x.zero_()  # a method scribbling on its bundle must not reach the cache
    assert load_base("digits").test_x.any()


def test_lt_noise_counts_and_meta_deficit():
    spec = _spec(noise="none", noise_rate=0.0, imbalance=10, meta_per_class=10)
    bundle = build_data(spec)
    base = load_base("digits")
    sizes = np.bincount(base.train_y)
    wanted = np.array(long_tail_counts(int(sizes.min()), 10, 10))
    deficit = np.maximum(0, wanted - (sizes - 10))
    assert bundle.clean_counts == (wanted - deficit).tolist()
    assert bundle.meta_from_train == int(deficit.sum()) > 0
    assert torch.equal(bundle.train_y, bundle.train_true_y)


def test_lt_noise_training_set_does_not_depend_on_meta_size_or_noise():
    # the LT subset and noise are drawn from their own stages: adding noise leaves the images alone
    a = build_data(_spec(noise="none", noise_rate=0.0))
    b = build_data(_spec(noise="lt-prior", noise_rate=0.3))
    assert torch.equal(a.train_source_index, b.train_source_index) and torch.equal(a.meta_x, b.meta_x)
    assert not torch.equal(b.train_y, b.train_true_y)


def test_meta_noise_lt_counts():
    bundle = build_data(_spec("meta-noise-lt", imbalance=10, meta_per_class=10))
    sizes = np.bincount(load_base("digits").train_y) - 10
    assert bundle.clean_counts == long_tail_counts(int(sizes.min()), 10, 10)
    assert bundle.meta_from_train == 0


def test_describe_is_exact_and_consistent():
    bundle = build_data(_spec(imbalance=3, noise="sym", noise_rate=0.5))
    d = describe(bundle)
    assert set(d) == DESCRIBE_KEYS
    assert d["num_classes"] == 10 and d["test_size"] == 500 and d["meta_size"] == 50
    assert d["train_size"] == sum(d["clean_counts"]) == sum(d["noisy_counts"]) == len(bundle.train_y)
    assert d["clean_counts"] == bundle.clean_counts and d["noisy_counts"] == bundle.noisy_counts
    m = np.array(d["transition_matrix"])
    assert m.shape == (10, 10)
    np.testing.assert_allclose(m.sum(1), 1.0)
    clean = np.array(d["clean_counts"])
    assert d["noise_rate_realized"] == pytest.approx(1 - (np.diag(m) * clean).sum() / clean.sum())
    assert 0.3 < d["noise_rate_realized"] < 0.6


def test_describe_empty_row_is_zeros():
    bundle = build_data(_spec(noise="none", noise_rate=0.0))
    keep = bundle.train_true_y != 3
    trimmed = dataclasses.replace(bundle, train_y=bundle.train_y[keep], train_true_y=bundle.train_true_y[keep])
    d = describe(trimmed)
    assert d["transition_matrix"][3] == [0.0] * 10
    assert d["transition_matrix"][0][0] == 1.0 and d["noise_rate_realized"] == 0.0


def test_bundle_metadata_and_to():
    bundle = build_data(_spec())
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size) == (10, 1, 8)
    assert bundle.augment == AugmentSpec()
    assert len(bundle.mean) == 1 and 0 < bundle.mean[0] < 1 and 0 < bundle.std[0] < 1
    moved = bundle.to("cpu")
    assert _equal_bundles(bundle, moved) and moved.spec == bundle.spec


@pytest.mark.parametrize("kw", [dict(meta_per_class=200), dict(imbalance=1000)])
def test_impossible_protocol_is_a_usage_error(kw):
    for order in ("lt-noise", "meta-noise-lt"):
        with pytest.raises(UsageError, match="no training image"):
            build_data(_spec(order, **kw))
