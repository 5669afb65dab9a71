"""`DataSpec.max_per_class`: a cap on the head class before the long-tail cut (the README report's protocol)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.core.errors import UsageError
from noisytail_datasets import DataSpec, build_data
from noisytail_datasets.long_tail import long_tail_counts


@pytest.mark.parametrize("order", ["lt-noise", "meta-noise-lt"])
def test_the_cap_is_the_head_class_size_and_the_profile_keeps_rho(order):
    capped = build_data(DataSpec("digits", imbalance=10, max_per_class=60, meta_per_class=5, order=order))
    counts = np.bincount(capped.train_true_y.numpy(), minlength=10)
    # independently: n_c = int(60 * 10 ** (-c / 9))
    assert list(counts) == [int(60 * 10 ** (-c / 9)) for c in range(10)]
    assert list(counts) == long_tail_counts(60, 10, 10)


def test_a_cap_above_the_smallest_class_changes_nothing_and_no_cap_is_the_papers_protocol():
    plain = build_data(DataSpec("digits", imbalance=10, noise="sym", noise_rate=0.4))
    loose = build_data(DataSpec("digits", imbalance=10, noise="sym", noise_rate=0.4, max_per_class=10_000))
    assert np.array_equal(plain.train_source_index.numpy(), loose.train_source_index.numpy())
    assert np.array_equal(plain.train_y.numpy(), loose.train_y.numpy())  # the noisy labels too


def test_capped_images_are_the_first_of_each_class_permutation():
    """The cap only shortens each class's list: a capped set is a subset of the uncapped one at rho 1."""
    full = build_data(DataSpec("digits", meta_per_class=0, data_seed=3))
    capped = build_data(DataSpec("digits", meta_per_class=0, data_seed=3, max_per_class=40))
    assert len(capped.train_y) == 400
    assert set(capped.train_source_index.tolist()) <= set(full.train_source_index.tolist())


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_a_bad_cap_is_refused(bad):
    with pytest.raises(UsageError, match="max_per_class must be an integer >= 0"):
        DataSpec("digits", max_per_class=bad).validate()
