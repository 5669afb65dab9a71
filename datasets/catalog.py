"""The registry of base datasets (`DATASETS`) and `load_base`, which decodes one (cached in-process)."""
from __future__ import annotations

import importlib

from bench.core.registry import Registry

from . import animal10n, red_mini_imagenet
from .augment import AugmentSpec
from .base import BaseData, BaseDatasetInfo
from .cifar import load_cifar10, load_cifar100
from .digits import load_digits_base
from .fashion_mnist import load_fashion_mnist
from .random_cifar import load_random_cifar

DATASETS: Registry[BaseDatasetInfo] = Registry("dataset")

_CROP_FLIP = AugmentSpec(pad=4, flip=True)

DATASETS.add("digits", BaseDatasetInfo("digits", 10, 1, 8, AugmentSpec(), load_digits_base),
             "scikit-learn 8x8 handwritten digits, 1,297 train / 500 test, bundled (no download)")
DATASETS.add("fashion-mnist", BaseDatasetInfo("fashion-mnist", 10, 1, 28, _CROP_FLIP, load_fashion_mnist),
             "Fashion-MNIST 28x28 grey clothing images, 60k train / 10k test (Xiao et al. 2017)")
DATASETS.add("cifar10", BaseDatasetInfo("cifar10", 10, 3, 32, _CROP_FLIP, load_cifar10),
             "CIFAR-10 32x32 colour images, 10 classes, 50k train / 10k test (Krizhevsky 2009)")
DATASETS.add("cifar100", BaseDatasetInfo("cifar100", 100, 3, 32, _CROP_FLIP, load_cifar100),
             "CIFAR-100 32x32 colour images, 100 fine classes in 20 superclasses, 50k / 10k (Krizhevsky 2009)")
# the reference pipeline (specs/realworld_data.md §2.2): horizontal flip only, no crop
DATASETS.add("animal10n", BaseDatasetInfo("animal10n", 10, 3, animal10n.IMAGE_SIZE, AugmentSpec(pad=0, flip=True),
                                          animal10n.load_animal10n, class_names=animal10n.CLASS_NAMES,
                                          clean_labels_known=False, keep_whole_at_rho_1=True),
             "Animal-10N 64x64 web images, 5 confusable animal pairs, 50k train with real noisy labels "
             "(clean ones unknown) / 5k clean test (Song et al. 2019); --data-root DIR with animal10n/")


def _add_red_mini_imagenet() -> None:
    """CNWL red noise at 32x32 as FaMUS reads it (specs/realworld_data.md §6): one dataset per released level."""
    rmi = red_mini_imagenet
    for level, train_size in rmi.RELEASE_SIZES.items():
        name = rmi.dataset_name(level)
        DATASETS.add(name, BaseDatasetInfo(name, rmi.NUM_CLASSES, 3, rmi.IMAGE_SIZE, _CROP_FLIP, rmi.loader_for(level),
                                           clean_labels_known=False, keep_whole_at_rho_1=True),
                     f"Red Mini-ImageNet (CNWL) 32x32, {float(level):.0%} web-label noise, 100 classes, "
                     f"{train_size:,} train (clean ones unknown) / {rmi.TEST_SIZE:,} clean test (Jiang et al. 2020); "
                     f"--data-root DIR with mini-imagenet/split/{rmi.train_list(level)}")


_add_red_mini_imagenet()

#: modules of datasets whose images are files (streamed); each registers its datasets with `register(DATASETS)`
STREAMED_MODULES: tuple[str, ...] = ("webvision", "clothing1m", "lt_splits")
for _module in STREAMED_MODULES:
    importlib.import_module(f"{__package__}.{_module}").register(DATASETS)


def load_base(name: str, data_root: str | None = None, download: bool = False) -> BaseData:
    """Decoded arrays of base dataset `name`; repeated calls reuse the in-process cache."""
    return DATASETS.get(name).load(data_root, download)


DATASETS.add("random-cifar", BaseDatasetInfo("random-cifar", 10, 3, 32, _CROP_FLIP, load_random_cifar),
             "timing only: 50k/10k random CIFAR-shaped uint8 images, random labels (bench perf --device cuda)")

