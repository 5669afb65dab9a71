"""Base dataset loaders: real Fashion-MNIST when installed, missing-file errors, a fake CIFAR on disk."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_cifar import FAKE_TEST_PER_CLASS, FAKE_TRAIN_PER_CLASS, fake_superclass, write_fake_cifar

from bench.core.errors import UsageError
from noisytail_datasets import DataSpec, build_data, cifar, describe, fashion_mnist, load_base, long_tail_counts

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="system Fashion-MNIST not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("BENCH_DATA", raising=False)
    base = load_base("fashion-mnist")
    assert base.train_x.shape == (60000, 1, 28, 28) and base.test_x.shape == (10000, 1, 28, 28)
    assert base.train_x.dtype == np.uint8
    assert (np.bincount(base.train_y) == 6000).all() and (np.bincount(base.test_y) == 1000).all()
    assert abs(base.train_x.mean() / 255 - 0.2860) < 1e-3
    assert load_base("fashion-mnist") is base  # decoded once per process
    bundle = build_data(DataSpec("fashion-mnist", imbalance=100, noise="asym", noise_rate=0.4))
    assert bundle.clean_counts[0] == 6000 - 10 and bundle.clean_counts[-1] == 60
    assert bundle.image_size == 28 and bundle.augment.pad == 4 and bundle.augment.flip


def test_missing_fashion_mnist_says_how_to_fix(no_data_dirs):
    with pytest.raises(UsageError) as err:
        load_base("fashion-mnist", data_root=str(no_data_dirs))
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message and "--download" in message and "--data-root" in message
    assert str(no_data_dirs) in message and str(fashion_mnist.SYSTEM_DIR) in message


@pytest.mark.parametrize("name,folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_missing_cifar_says_how_to_fix(no_data_dirs, name, folder):
    with pytest.raises(UsageError) as err:
        build_data(DataSpec(name), data_root=str(no_data_dirs))
    message = str(err.value)
    assert "--download" in message and "--data-root" in message and folder in message
    assert str(no_data_dirs) in message


def test_fake_cifar10_bundle(fake_cifar_root, no_data_dirs):
    base = load_base("cifar10", data_root=str(fake_cifar_root))
    assert base.train_x.shape == (10 * FAKE_TRAIN_PER_CLASS, 3, 32, 32)
    assert base.test_x.shape == (10 * FAKE_TEST_PER_CLASS, 3, 32, 32)
    assert base.superclass is None
    spec = DataSpec("cifar10", imbalance=4, noise="asym", noise_rate=0.5, meta_per_class=2)
    bundle = build_data(spec, data_root=str(fake_cifar_root))
    wanted = long_tail_counts(FAKE_TRAIN_PER_CLASS, 10, 4)  # [20, 17, 14, ..., 5]
    assert bundle.clean_counts == [min(n, FAKE_TRAIN_PER_CLASS - 2) for n in wanted]
    assert bundle.meta_from_train == 2  # only the head class had no left-out images
    d = describe(bundle)
    changed = bundle.train_y != bundle.train_true_y
    assert set(bundle.train_true_y[changed].tolist()) <= {2, 3, 4, 5, 9}
    assert d["meta_size"] == 20 and d["test_size"] == 30
    assert np.array_equal(bundle.train_x.numpy(), base.train_x[bundle.train_source_index.numpy()])


def test_fake_cifar_via_bench_data_env(fake_cifar_root, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(fake_cifar_root))
    assert load_base("cifar10").train_x.shape[0] == 10 * FAKE_TRAIN_PER_CLASS


def test_fake_cifar100_superclass_and_asym(fake_cifar_root, no_data_dirs):
    base = load_base("cifar100", data_root=str(fake_cifar_root))
    assert np.array_equal(base.superclass, fake_superclass())
    spec = DataSpec("cifar100", imbalance=2, noise="asym", noise_rate=0.6, order="meta-noise-lt", meta_per_class=1)
    bundle = build_data(spec, data_root=str(fake_cifar_root))
    true_y, noisy_y = bundle.train_true_y.numpy(), bundle.train_y.numpy()
    changed = true_y != noisy_y
    assert changed.mean() > 0.4
    sup = fake_superclass()
    assert (sup[true_y[changed]] == sup[noisy_y[changed]]).all()
    members = {s: sorted(np.flatnonzero(sup == s).tolist()) for s in range(20)}
    for t, n in zip(true_y[changed], noisy_y[changed]):  # 'next in superclass', cyclic
        ids = members[sup[t]]
        assert n == ids[(ids.index(t) + 1) % len(ids)]
    assert bundle.clean_counts[0] == FAKE_TRAIN_PER_CLASS - 1 and bundle.clean_counts[-1] == 9
    assert torch.equal(bundle.meta_y, torch.as_tensor(base.train_y[bundle.meta_source_index.numpy()]))


def test_decoded_arrays_are_cached(fake_cifar_root):
    cifar._decode.cache_clear()
    load_base("cifar100", data_root=str(fake_cifar_root))
    load_base("cifar100", data_root=str(fake_cifar_root))
    info = cifar._decode.cache_info()
    assert info.misses == 1 and info.hits == 1


class _OpensAFile:
    """Pickles as a call of `open(path, "w")`: unpickling it with plain pickle would create the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_cifar_batch_with_a_foreign_global_is_refused_without_running_it(tmp_path, no_data_dirs):
    root = tmp_path / "data"
    write_fake_cifar(root, seed=5)
    marker = tmp_path / "should-not-exist"
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(pickle.dumps({b"data": _OpensAFile(marker), b"labels": []}, protocol=2))
    with pytest.raises(UsageError, match=r"data_batch_3 could not be read safely \(global .*open is not allowed\)"):
        load_base("cifar10", data_root=str(root))
    assert not marker.exists()
