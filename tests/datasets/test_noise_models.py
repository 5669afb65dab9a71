"""Noise models: matrices match protocols.md §B/§C.1, and sampling realises them within statistical error."""
from __future__ import annotations

import numpy as np
import pytest
from fake_cifar import fake_superclass

from noisytail_datasets import (
    NOISE_MODELS,
    long_tail_counts,
    sample_exact_count_labels,
    sample_noisy_labels,
    transition_matrix,
)
from noisytail_datasets.class_maps import CIFAR10_ASYM, next_in_superclass, pair_flip_map

N = 100_000

# protocols.md §B.3, CIFAR-100 `flip` (i->j), as listed there
CIFAR100_FLIP = """
0->38 1->13 2->73 3->10 4->76 5->6 6->80 7->65 8->17 9->1 10->77 11->72
12->6 13->26 14->51 15->21 16->19 17->85 18->11 19->29 20->30 21->14 22->51 23->69 24->88 25->88
26->95 27->97 28->87 29->13 30->9 31->7 32->64 33->62 34->22 35->58 36->1 37->0 38->61 39->82
40->8 41->89 42->13 43->48 44->73 45->30 46->72 47->3 48->71 49->21 50->49 51->58 52->3 53->69
54->24 55->43 56->77 57->26 58->52 59->81 60->41 61->83 62->15 63->65 64->69 65->25 66->99
67->88 68->7 69->26 70->25 71->22 72->9 73->67 74->23 75->27 76->37 77->57 78->84 79->38 80->8
81->32 82->34 83->10 84->23 85->15 86->88 87->25 88->71 89->93 90->74 91->62 92->46 93->32
94->88 95->23 96->55 97->65 98->77 99->3
"""


def _empirical(true_y: np.ndarray, noisy_y: np.ndarray, c: int) -> np.ndarray:
    pairs = np.bincount(true_y * c + noisy_y, minlength=c * c).reshape(c, c).astype(float)
    return pairs / pairs.sum(1, keepdims=True)


def _check_sampling(t: np.ndarray, true_y: np.ndarray, seed: int = 0) -> None:
    """Empirical matrix and realised rate within 5 standard errors of what T implies."""
    c = t.shape[0]
    noisy = sample_noisy_labels(true_y, t, np.random.default_rng(seed))
    assert noisy.dtype == np.int64 and noisy.min() >= 0 and noisy.max() < c
    assert not ((t[true_y, noisy]) == 0).any(), "a zero-probability label was drawn"
    rows = np.bincount(true_y, minlength=c)[:, None]
    se = np.sqrt(t * (1 - t) / rows)
    assert (np.abs(_empirical(true_y, noisy, c) - t) <= 5 * se + 1e-12).all()
    freq = rows[:, 0] / len(true_y)
    expected_rate = float(freq @ (1 - np.diag(t)))
    rate_se = np.sqrt(expected_rate * (1 - expected_rate) / len(true_y))
    assert abs((noisy != true_y).mean() - expected_rate) <= 5 * rate_se


def test_registry_names_and_descriptions():
    assert NOISE_MODELS.names() == ["none", "sym", "sym-excl", "asym", "flip", "lt-prior", "human-aggre", "human-rand1",
                                    "human-rand2", "human-rand3", "human-worst", "human-noisy"]
    for name in NOISE_MODELS:
        assert NOISE_MODELS.describe(name)


@pytest.mark.parametrize("noise", ["none", "sym", "sym-excl", "asym", "flip", "lt-prior"])
def test_rows_are_distributions(noise):
    t = transition_matrix(noise, 0.3, 10, class_counts=long_tail_counts(500, 10, 10), dataset="cifar10")
    assert t.shape == (10, 10) and (t >= 0).all()
    np.testing.assert_allclose(t.sum(1), 1.0)


def test_sym_inclusive_and_exclusive():
    t = transition_matrix("sym", 0.4, 10)
    np.testing.assert_allclose(np.diag(t), 0.6 + 0.04)
    np.testing.assert_allclose(t[0, 1], 0.04)
    t = transition_matrix("sym-excl", 0.4, 10)
    np.testing.assert_allclose(np.diag(t), 0.6)
    np.testing.assert_allclose(t[0, 1], 0.4 / 9)


@pytest.mark.parametrize("noise,c", [("sym", 10), ("sym-excl", 10), ("flip", 10), ("sym", 100), ("flip", 100)])
def test_sampling_matches_matrix(noise, c):
    true_y = np.random.default_rng(1).integers(0, c, N)
    _check_sampling(transition_matrix(noise, 0.4, c), true_y)


def test_none_changes_nothing():
    true_y = np.random.default_rng(1).integers(0, 10, 1000)
    noisy = sample_noisy_labels(true_y, transition_matrix("none", 0.0, 10), np.random.default_rng(0))
    assert np.array_equal(noisy, true_y)


def test_asym_cifar10_semantic_map():
    t = transition_matrix("asym", 0.4, 10, dataset="cifar10")
    for src, dst in {2: 0, 3: 5, 4: 7, 5: 3, 9: 1}.items():
        assert t[src, src] == pytest.approx(0.6) and t[src, dst] == pytest.approx(0.4)
    for keep in (0, 1, 6, 7, 8):
        assert t[keep, keep] == 1.0
    _check_sampling(t, np.random.default_rng(2).integers(0, 10, N))


def test_asym_fashion_mnist_map():
    t = transition_matrix("asym", 0.3, 10, dataset="fashion-mnist")
    expected = {0: 6, 6: 0, 2: 4, 4: 2, 5: 7, 7: 5, 9: 7}
    for src in range(10):
        if src in expected:
            assert t[src, expected[src]] == pytest.approx(0.3)
        else:
            assert t[src, src] == 1.0
    _check_sampling(t, np.random.default_rng(3).integers(0, 10, N))


def test_cifar100_next_in_superclass():
    superclass = np.zeros(100, dtype=int)
    superclass[[0, 51, 53, 57, 83]] = 1
    superclass[[2, 11, 35, 46, 98]] = 2
    mapping = next_in_superclass(superclass)
    assert [mapping[k] for k in (0, 51, 53, 57, 83)] == [51, 53, 57, 83, 0]
    assert mapping[2] == 11 and mapping[98] == 2
    t = transition_matrix("asym", 0.4, 100, dataset="cifar100", superclass=fake_superclass())
    sup = fake_superclass()
    src, dst = np.nonzero((t > 0) & ~np.eye(100, dtype=bool))
    assert len(src) == 100 and (sup[src] == sup[dst]).all()
    _check_sampling(t, np.random.default_rng(4).integers(0, 100, N))


def test_flip_reproduces_mwnet_gdw_maps():
    assert pair_flip_map(10) == (6, 9, 6, 0, 0, 1, 8, 6, 2, 4)
    assert pair_flip_map(100)[:5] == (38, 13, 73, 10, 76)
    assert pair_flip_map(100) == tuple(int(pair.split("->")[1]) for pair in CIFAR100_FLIP.split())
    t = transition_matrix("flip", 0.45, 10)
    assert t[0, 6] == pytest.approx(0.45) and t[0, 0] == pytest.approx(0.55)


def test_flip_does_not_touch_global_rng():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    pair_flip_map.cache_clear()
    pair_flip_map(10)
    assert np.random.random() == expected


@pytest.mark.parametrize("n_max,c,rho,factor", [(5000, 10, 10, 0.851), (5000, 10, 100, 0.747),
                                                (500, 100, 10, 0.986), (500, 100, 100, 0.976)])
def test_lt_prior_change_factor_matches_protocols_table(n_max, c, rho, factor):
    p = np.asarray(long_tail_counts(n_max, c, rho), dtype=float)
    p /= p.sum()
    assert 1 - (p ** 2).sum() == pytest.approx(factor, abs=6e-4)


def test_lt_prior_sampling():
    counts = np.asarray(long_tail_counts(5000, 10, 100)) * 8  # ~99k labels with LT class sizes
    true_y = np.repeat(np.arange(10), counts)
    lam = 0.4
    t = transition_matrix("lt-prior", lam, 10, class_counts=counts)
    p = counts / counts.sum()
    np.testing.assert_allclose(t, (1 - lam) * np.eye(10) + lam * p[None, :])
    _check_sampling(t, true_y)
    noisy = sample_noisy_labels(true_y, t, np.random.default_rng(9))
    expected = lam * (1 - (p ** 2).sum())
    assert abs((noisy != true_y).mean() - expected) <= 5 * np.sqrt(expected * (1 - expected) / len(true_y))


def test_lt_prior_needs_counts():
    with pytest.raises(ValueError):
        transition_matrix("lt-prior", 0.2, 10)


def test_sampling_is_deterministic_per_generator():
    true_y = np.random.default_rng(0).integers(0, 10, 5000)
    t = transition_matrix("sym", 0.5, 10)
    a = sample_noisy_labels(true_y, t, np.random.default_rng(5))
    b = sample_noisy_labels(true_y, t, np.random.default_rng(5))
    c = sample_noisy_labels(true_y, t, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# --- exact-count sampling (DivideMix dataloader_cifar.py, methods.md §4.3) ---------------------------


@pytest.mark.parametrize("n,rate", [(1000, 0.4), (997, 0.29), (50_000, 0.8), (10, 0.05)])
def test_exact_relabels_exactly_int_r_n(n, rate):
    # flip at rate 1 moves every label to another class, so each chosen sample shows as one change
    labels = np.arange(n) % 10
    noisy = sample_exact_count_labels(labels, transition_matrix("flip", 1.0, 10), rate, np.random.default_rng(0))
    assert (noisy != labels).sum() == int(rate * n)
    assert np.array_equal(noisy[noisy != labels], np.asarray(pair_flip_map(10))[labels[noisy != labels]])


def test_independent_sampling_count_varies_but_exact_does_not():
    labels, t1 = np.arange(1000) % 10, transition_matrix("flip", 1.0, 10)
    exact = {int((sample_exact_count_labels(labels, t1, 0.4, np.random.default_rng(s)) != labels).sum())
             for s in range(5)}
    independent = {int((sample_noisy_labels(labels, transition_matrix("flip", 0.4, 10), np.random.default_rng(s))
                        != labels).sum()) for s in range(5)}
    assert exact == {400} and len(independent) > 1


def test_exact_sym_draws_from_all_classes_including_the_true_one():
    n, rate, c = 20_000, 0.5, 10
    labels = np.arange(n) % c
    k = int(rate * n)
    flips = []
    for seed in range(20):
        noisy = sample_exact_count_labels(labels, transition_matrix("sym", 1.0, c), rate, np.random.default_rng(seed))
        flips.append((noisy != labels).sum())
    flips = np.array(flips)
    assert (flips < k).all()  # in every draw some chosen samples drew their own class again
    # each chosen label stays with prob. 1/C: flips ~ Binomial(k, (C-1)/C), mean 9000, sd ~ 30 per draw
    assert abs(flips.mean() - k * (c - 1) / c) < 4 * np.sqrt(k * (c - 1) / c ** 2 / len(flips))


def test_exact_sym_relabels_uniformly():
    n, c = 100_000, 10
    labels = np.zeros(n, dtype=np.int64)
    noisy = sample_exact_count_labels(labels, transition_matrix("sym", 1.0, c), 0.6, np.random.default_rng(1))
    counts = np.bincount(noisy, minlength=c)
    k = int(0.6 * n)
    # class 0: the 40,000 untouched + k/C redrawn; every other class k/C
    expected = np.full(c, k / c) + np.eye(c)[0] * (n - k)
    assert np.abs(counts - expected).max() < 5 * np.sqrt(k / c)


def test_exact_asym_maps_exactly_the_chosen_samples():
    n, rate = 5000, 0.4
    mapped = np.array(sorted(CIFAR10_ASYM))
    only_mapped = mapped[np.arange(n) % len(mapped)]  # every sample's class has a target
    t1 = transition_matrix("asym", 1.0, 10, dataset="cifar10")
    noisy = sample_exact_count_labels(only_mapped, t1, rate, np.random.default_rng(2))
    changed = noisy != only_mapped
    assert changed.sum() == int(rate * n)
    assert all(noisy[i] == CIFAR10_ASYM[only_mapped[i]] for i in np.flatnonzero(changed))
    # all classes: the unmapped half never changes, so about r/2 of all labels flip ("40% asym" ≈ 20%)
    labels = np.arange(n) % 10
    noisy = sample_exact_count_labels(labels, t1, rate, np.random.default_rng(2))
    changed = noisy != labels
    assert set(labels[changed].tolist()) <= set(CIFAR10_ASYM) and changed.sum() <= int(rate * n)
    assert abs(changed.mean() - rate / 2) < 0.03


def test_exact_sampling_uses_only_the_given_generator():
    labels, t1 = np.arange(2000) % 10, transition_matrix("sym", 1.0, 10)
    np.random.seed(0)
    a = sample_exact_count_labels(labels, t1, 0.5, np.random.default_rng(7))
    np.random.seed(1)
    b = sample_exact_count_labels(labels, t1, 0.5, np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, sample_exact_count_labels(labels, t1, 0.5, np.random.default_rng(8)))
