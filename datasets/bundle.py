"""`DataBundle`: the tensors of one run, built once and kept on the device; `describe` summarises one."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .augment import AugmentSpec
from .catalog import DATASETS
from .images import ImageFiles, StreamTransforms
from .spec import DataSpec

_TENSOR_FIELDS = ("train_x", "train_y", "train_true_y", "train_source_index", "meta_x", "meta_y", "test_x", "test_y",
                  "meta_source_index", "val_x", "val_y", "val_true_y", "val_source_index")

#: a split's images: uint8 N×C×H×W on the device, or files streamed from disk
Images = Tensor | ImageFiles


def _moved(value: Images | None, device: torch.device | str) -> Images | None:
    return value.to(device) if isinstance(value, Tensor) else value


@dataclass
class DataBundle:
    """Train (noisy labels), clean meta and test tensors of one run.

    `train_true_y` holds the clean labels for diagnostics only; methods must train on `train_y`.
    Where `clean_labels_known` is False (real noise without released clean labels, Animal-10N) it
    holds the source's own labels before any added synthetic noise, and is no ground truth.
    `meta_from_train` counts meta images that had to come out of the long-tailed training list
    (see `noisytail_datasets.build`); `meta_source_index` locates the meta images in the base
    training set, like `train_source_index` does for the training images. `val_*` is the validation
    split held out of the noisy training set (`DataSpec.val_fraction`; empty when 0): noisy labels in
    `val_y`, never trained on, never given to a method.
    """

    spec: DataSpec
    num_classes: int
    in_channels: int
    image_size: int
    train_x: Images
    train_y: Tensor
    train_true_y: Tensor
    train_source_index: Tensor
    meta_x: Images
    meta_y: Tensor
    test_x: Images
    test_y: Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: AugmentSpec
    meta_from_train: int = 0
    meta_source_index: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))
    clean_labels_known: bool = True
    extra_tests: dict[str, tuple[Images, Tensor]] = field(default_factory=dict)
    stream: StreamTransforms | None = None
    val_x: Images | None = None
    val_y: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))
    val_true_y: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))
    val_source_index: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))

    @property
    def streamed(self) -> bool:
        """True when the training images are files on disk (the streaming data path)."""
        return isinstance(self.train_x, ImageFiles)

    def to(self, device: torch.device | str) -> "DataBundle":
        """A copy with every tensor on `device` (files stay on disk)."""
        moved = {name: _moved(getattr(self, name), device) for name in _TENSOR_FIELDS}
        extra = {name: (_moved(x, device), y.to(device)) for name, (x, y) in self.extra_tests.items()}
        return dataclasses.replace(self, **moved, extra_tests=extra)

    @property
    def noisy_counts(self) -> list[int]:
        """Training-set size of each class under the given (noisy) labels."""
        return torch.bincount(self.train_y, minlength=self.num_classes).tolist()

    @property
    def clean_counts(self) -> list[int]:
        """Training-set size of each class under the true labels."""
        return torch.bincount(self.train_true_y, minlength=self.num_classes).tolist()


UNKNOWN_CLEAN = "unknown (the clean training labels of this dataset are not released)"


def _describe_unknown_clean(bundle: DataBundle) -> dict:
    """What can be said without clean labels: sizes, counts of the given labels, and how many of
    them any added synthetic noise changed."""
    info = {
        "num_classes": bundle.num_classes,
        "train_size": len(bundle.train_y),
        "test_size": len(bundle.test_y),
        "meta_size": len(bundle.meta_y),
        "clean_labels_known": False,
        "clean_counts": UNKNOWN_CLEAN,
        "noisy_counts": bundle.noisy_counts,
        "noise_rate": UNKNOWN_CLEAN,
    }
    if bundle.spec.noise != "none":
        changed = (bundle.train_y != bundle.train_true_y).double()
        info["added_noise_rate_realized"] = float(changed.mean()) if len(changed) else 0.0
    return info


def describe(bundle: DataBundle) -> dict:
    """Sizes, clean/noisy class counts, realised noise rate and the empirical clean->noisy matrix
    (when the clean labels are unknown: sizes, given-label counts, and the rate reported as unknown)."""
    names = DATASETS.get(bundle.spec.dataset).class_names
    shown = {"class_names": list(names)} if names else {}  # only datasets that name their classes
    if bundle.streamed:
        shown["images"] = f"files, streamed at {bundle.image_size}x{bundle.image_size}"
    if len(bundle.val_y):
        shown["val_size"] = len(bundle.val_y)
        if bundle.clean_labels_known:
            shown["val_noise_rate_realized"] = float((bundle.val_y != bundle.val_true_y).double().mean().cpu())
    if bundle.extra_tests:
        shown["extra_test_sizes"] = {name: len(y) for name, (_, y) in bundle.extra_tests.items()}
    if not bundle.clean_labels_known:
        return {**_describe_unknown_clean(bundle), **shown}
    c = bundle.num_classes
    true_y, noisy_y = bundle.train_true_y.cpu(), bundle.train_y.cpu()
    pairs = torch.bincount(true_y * c + noisy_y, minlength=c * c).view(c, c).double()
    rows = pairs.sum(1, keepdim=True)
    matrix = torch.where(rows > 0, pairs / rows.clamp(min=1), torch.zeros_like(pairs))
    n = len(true_y)
    return {
        "num_classes": c,
        "train_size": n,
        "test_size": len(bundle.test_y),
        "meta_size": len(bundle.meta_y),
        "clean_counts": bundle.clean_counts,
        "noisy_counts": bundle.noisy_counts,
        "noise_rate_realized": float((true_y != noisy_y).double().mean()) if n else 0.0,
        "transition_matrix": matrix.tolist(),
        **shown,
    }
