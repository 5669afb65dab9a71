"""What a base dataset is: its fixed metadata (`BaseDatasetInfo`) and its decoded arrays (`BaseData`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .augment import AugmentSpec


@dataclass(frozen=True, eq=False)
class BaseData:
    """A decoded base dataset: uint8 N×C×H×W images and int64 labels, train and test.

    `superclass[c]` is the coarse class of fine class c where the source defines one
    (CIFAR-100), else None. mean/std are per channel on the 0..1 scale. `clean_labels_known` is
    False where the training labels are the source's own noisy ones and the clean labels were never
    released (Animal-10N): `train_y` is then all there is, and nothing may score against it as if clean.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    superclass: np.ndarray | None = None
    clean_labels_known: bool = True

    def class_counts(self, num_classes: int) -> np.ndarray:
        """Per-class number of training images."""
        return np.bincount(self.train_y, minlength=num_classes)


# (data_root, download) -> BaseData
Loader = Callable[[str | None, bool], BaseData]


@dataclass(frozen=True)
class BaseDatasetInfo:
    """Static facts about a base dataset, known without reading any file."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    augment: AugmentSpec
    load: Loader
    class_names: tuple[str, ...] = ()  # for display only, where the source names its classes
    #: False where only noisy training labels were released (no trusted meta set can be carved)
    clean_labels_known: bool = True
    #: at ρ = 1 keep every training image of the release (a real-world training set, whose classes
    #: are not meant to be cut to the smallest one's size); False: ρ = 1 equalises the classes
    keep_whole_at_rho_1: bool = False


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a uint8 N×C×H×W array on the 0..1 scale."""
    scaled = x.astype(np.float64) / 255.0
    axes = (0, 2, 3)
    return tuple(float(v) for v in scaled.mean(axes)), tuple(float(v) for v in scaled.std(axes))
