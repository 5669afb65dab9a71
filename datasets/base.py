"""What a base dataset is: its fixed metadata (`BaseDatasetInfo`) and its decoded arrays (`BaseData`)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .augment import AugmentSpec
from .images import ImageFiles, StreamTransforms

#: the images of one split: a uint8 N×C×H×W array (held in memory) or files on disk (streamed)
ImageStore = np.ndarray | ImageFiles


@dataclass(frozen=True, eq=False)
class BaseData:
    """A base dataset: images (a uint8 N×C×H×W array, or `ImageFiles` for full-size photographs that
    are streamed from disk) and int64 labels, train and test.

    `superclass[c]` is the coarse class of fine class c where the source defines one
    (CIFAR-100), else None. mean/std are per channel on the 0..1 scale. `clean_labels_known` is
    False where the training labels are the source's own noisy ones and the clean labels were never
    released (Animal-10N): `train_y` is then all there is, and nothing may score against it as if clean.
    `extra_tests` names further clean evaluation sets (mini-WebVision's ImageNet val), scored beside
    the main test set. `meta_pool` is a released clean set, apart from the training images, that the
    trusted meta set is drawn from (Clothing1M's clean val, ImageNet-LT's val); None: the meta set
    comes out of the training images (the CIFAR protocols).
    """

    train_x: ImageStore
    train_y: np.ndarray
    test_x: ImageStore
    test_y: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    superclass: np.ndarray | None = None
    clean_labels_known: bool = True
    extra_tests: Mapping[str, tuple[ImageStore, np.ndarray]] = field(default_factory=dict)
    meta_pool: tuple[ImageStore, np.ndarray] | None = None

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
    #: the per-image pipeline of a dataset whose images are files (streamed; `image_size` is then
    #: `stream.size`); None: fixed-size images held as one array (device-resident)
    stream: StreamTransforms | None = None
    #: a released clean set, apart from the training images, is the meta-set pool (`BaseData.meta_pool`)
    has_meta_pool: bool = False
    #: top-5 accuracy is recorded beside top-1 (`test_top5`, and `<set>_top5` for each extra test set)
    report_top5: bool = False
    #: many/medium/few-shot accuracies are recorded (`many_acc`, `medium_acc`, `few_acc`; classes grouped by
    #: their training-set size, `long_tail.shot_groups`, BALMS rule)
    report_shots: bool = False


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a uint8 N×C×H×W array on the 0..1 scale."""
    scaled = x.astype(np.float64) / 255.0
    axes = (0, 2, 3)
    return tuple(float(v) for v in scaled.mean(axes)), tuple(float(v) for v in scaled.std(axes))
