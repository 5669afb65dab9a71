"""scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes); no files or network needed.

Pixel values 0..16 are scaled to uint8 with round(v*255/16). Fixed split: per class, after a
permutation from np.random.default_rng(0), the first 50 images are the test set (500 in all),
the rest (1,297) the training set. mean/std come from the training split.
"""
from __future__ import annotations

import functools

import numpy as np

from .base import BaseData, channel_stats

TEST_PER_CLASS = 50


@functools.lru_cache(maxsize=1)
def _decode() -> BaseData:
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = np.rint(raw.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # N×1×8×8
    labels = raw.target.astype(np.int64)
    rng = np.random.default_rng(0)
    test_parts = []
    for c in range(10):
        test_parts.append(rng.permutation(np.flatnonzero(labels == c))[:TEST_PER_CLASS])
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[np.concatenate(test_parts)] = True
    train_x, test_x = images[~is_test], images[is_test]
    mean, std = channel_stats(train_x)
    return BaseData(train_x, labels[~is_test], test_x, labels[is_test], mean, std)


def load_digits_base(data_root: str | None = None, download: bool = False) -> BaseData:
    """The digits base dataset (the arguments are accepted for a uniform loader signature)."""
    return _decode()
