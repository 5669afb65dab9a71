"""Per-channel normalisation constants as the official codes use them, keyed by name and dataset.

"dataset" means the dataset's own constants (`BaseData.mean/std`: for CIFAR the DivideMix/DAL
values). The other entries are tables written out here, on the 0..1 scale.
"""
from __future__ import annotations

from bench.core.errors import UsageError, unknown

from .base import BaseData

Stats = tuple[float, ...]

#: the dataset's own mean/std, as each loader defines them
DATASET_OWN = "dataset"


def _scaled(values: tuple[float, ...]) -> Stats:
    return tuple(v / 255.0 for v in values)


_MWNET_CIFAR = (_scaled((125.3, 123.0, 113.9)), _scaled((63.0, 62.1, 66.7)))

#: name -> dataset -> (mean, std)
NORMALISATIONS: dict[str, dict[str, tuple[Stats, Stats]]] = {
    # MW-Net / GDW scripts, both CIFARs (methods.md §5.2, §7.2)
    "mwnet": {"cifar10": _MWNET_CIFAR, "cifar100": _MWNET_CIFAR},
    # Dynamic Loss mmcls configs, 0-255 scale (methods.md §10.4)
    "mmcls": {
        "cifar10": (_scaled((125.307, 122.961, 113.8575)), _scaled((51.5865, 50.847, 51.255))),
        "cifar100": (_scaled((129.304, 124.070, 112.434)), _scaled((68.170, 65.392, 70.418))),
    },
}

NORMALISATION_NAMES = (DATASET_OWN, *NORMALISATIONS)


def normalisations_for(dataset: str) -> tuple[str, ...]:
    """The normalisation names defined for `dataset` ("dataset" always is)."""
    return (DATASET_OWN, *(name for name, table in NORMALISATIONS.items() if dataset in table))


def check_normalisation(name: str, dataset: str) -> None:
    """UsageError unless normalisation `name` exists and is defined for `dataset`."""
    if name not in NORMALISATION_NAMES:
        raise unknown("normalisation", name, NORMALISATION_NAMES)
    if name not in normalisations_for(dataset):
        raise UsageError(f"normalisation '{name}' is not defined for dataset '{dataset}'; "
                         f"use --normalisation {' or '.join(normalisations_for(dataset))}")


def normalisation_stats(name: str, dataset: str, base: BaseData) -> tuple[Stats, Stats]:
    """(mean, std) per channel, on the 0..1 scale, of normalisation `name` for `dataset`."""
    check_normalisation(name, dataset)
    if name == DATASET_OWN:
        return tuple(base.mean), tuple(base.std)
    return NORMALISATIONS[name][dataset]
