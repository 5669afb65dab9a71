"""A tiny fake CIFAR-10 / CIFAR-100 in torchvision's real pickle format, for the data-package tests."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

FAKE_TRAIN_PER_CLASS = 20
FAKE_TEST_PER_CLASS = 3


def fake_superclass() -> np.ndarray:
    """A fine->coarse table for 100 classes whose superclass members are not contiguous ids."""
    return (np.arange(100) * 7) % 20


def _labels(num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(num_classes), per_class))


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_fake_cifar(root: Path, seed: int = 0) -> None:
    """Write CIFAR-10 and CIFAR-100 in torchvision's pickle layout with few images per class."""
    rng = np.random.default_rng(seed)
    c10 = root / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    train_y = _labels(10, FAKE_TRAIN_PER_CLASS, rng)
    train_x = rng.integers(0, 256, (len(train_y), 3072), dtype=np.uint8)
    for i, part in enumerate(np.array_split(np.arange(len(train_y)), 5), start=1):
        _dump(c10 / f"data_batch_{i}", {b"data": train_x[part], b"labels": train_y[part].tolist()})
    test_y = _labels(10, FAKE_TEST_PER_CLASS, rng)
    _dump(c10 / "test_batch", {b"data": rng.integers(0, 256, (len(test_y), 3072), dtype=np.uint8),
                               b"labels": test_y.tolist()})

    c100 = root / "cifar-100-python"
    c100.mkdir(parents=True)
    coarse_of = fake_superclass()
    for name, per_class in (("train", FAKE_TRAIN_PER_CLASS), ("test", FAKE_TEST_PER_CLASS)):
        fine = _labels(100, per_class, rng)
        _dump(c100 / name, {
            b"data": rng.integers(0, 256, (len(fine), 3072), dtype=np.uint8),
            b"fine_labels": fine.tolist(),
            b"coarse_labels": coarse_of[fine].tolist(),
        })
