"""Fixed class -> class maps used by the asymmetric and pair-flip noise models."""
from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from bench.core.errors import UsageError

# CIFAR-10 semantic map (protocols.md §B.2; DivideMix, Dynamic Loss, FSR/IEG, DAL):
# bird->airplane, cat->dog, deer->horse, dog->cat, truck->automobile.
CIFAR10_ASYM = {2: 0, 3: 5, 4: 7, 5: 3, 9: 1}

# Fashion-MNIST: this project's own choice of visually confusable pairs (no paper defines one):
# T-shirt/top<->Shirt, Pullover<->Coat, Sandal<->Sneaker, Ankle boot->Sneaker.
FASHION_MNIST_ASYM = {0: 6, 6: 0, 2: 4, 4: 2, 5: 7, 7: 5, 9: 7}

ASYM_DATASETS = ("cifar10", "cifar100", "fashion-mnist")


def has_asym_map(dataset: str) -> bool:
    """Whether asymmetric noise is defined for `dataset`."""
    return dataset in ASYM_DATASETS


def next_in_superclass(superclass: Sequence[int]) -> dict[int, int]:
    """Each fine class -> the next fine class of its superclass, cyclic over sorted fine ids (§B.4)."""
    superclass = np.asarray(superclass)
    mapping: dict[int, int] = {}
    for coarse in np.unique(superclass):
        members = np.flatnonzero(superclass == coarse)  # ascending
        for k, fine in enumerate(members):
            mapping[int(fine)] = int(members[(k + 1) % len(members)])
    return mapping


def asym_map(dataset: str, superclass: Sequence[int] | None = None) -> dict[int, int]:
    """The asymmetric-noise map of `dataset` (classes not listed keep their label)."""
    if dataset == "cifar10":
        return dict(CIFAR10_ASYM)
    if dataset == "fashion-mnist":
        return dict(FASHION_MNIST_ASYM)
    if dataset == "cifar100":
        if superclass is None:
            raise ValueError("CIFAR-100 asymmetric noise needs the fine->coarse superclass table")
        return next_in_superclass(superclass)
    raise UsageError(f"asymmetric noise has no class map for dataset '{dataset}'; "
                     "use --noise sym, sym-excl, flip or lt-prior")


@functools.lru_cache(maxsize=None)
def pair_flip_map(num_classes: int) -> tuple[int, ...]:
    """MW-Net/GDW `flip_labels_C(r, C, seed=1)` targets (§B.3), on NumPy's legacy RNG stream.

    Class i's target is `choice(classes != i)` drawn in order i = 0..C-1 right after seeding 1.
    """
    rs = np.random.RandomState(1)
    classes = np.arange(num_classes)
    return tuple(int(rs.choice(classes[classes != i])) for i in range(num_classes))
