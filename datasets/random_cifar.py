"""CIFAR-shaped random images, for timing only: 50,000 train / 10,000 test uint8 3×32×32 images
with uniformly random labels over 10 classes (seeded). Accuracy on it is meaningless (chance);
`bench perf --device cuda` uses it where no CIFAR files are at hand."""
from __future__ import annotations

import functools

import numpy as np

from .base import BaseData

TRAIN, TEST = 50_000, 10_000


@functools.lru_cache(maxsize=1)
def _make() -> BaseData:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(TRAIN + TEST, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=TRAIN + TEST).astype(np.int64)
    return BaseData(images[:TRAIN], labels[:TRAIN], images[TRAIN:], labels[TRAIN:],
                    mean=(0.5, 0.5, 0.5), std=(0.289, 0.289, 0.289))


def load_random_cifar(data_root: str | None = None, download: bool = False) -> BaseData:
    """The random CIFAR-shaped set (the arguments keep the loaders' signature)."""
    return _make()
