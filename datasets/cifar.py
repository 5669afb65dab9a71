"""CIFAR-10 / CIFAR-100 (Krizhevsky 2009) from torchvision's on-disk pickle format.

Expected layout under a root: `cifar-10-batches-py/{data_batch_1..5,test_batch}` (b'data'
N×3072 uint8, b'labels') and `cifar-100-python/{train,test}` (b'fine_labels',
b'coarse_labels'). Roots searched: `data_root`, `$BENCH_DATA`, the user cache. With
download=True, missing files are fetched with torchvision into the download root. For CIFAR-100
the coarse class (superclass) of every fine class is read from the training file's coarse labels.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.errors import UsageError

from . import locate
from .base import BaseData
from .safe_pickle import load_array_dict


@dataclass(frozen=True)
class CifarLayout:
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    mean: tuple[float, ...]
    std: tuple[float, ...]
    torchvision_class: str


CIFAR10 = CifarLayout(
    "CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
    b"labels", (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), "CIFAR10",
)
CIFAR100 = CifarLayout(
    "CIFAR-100", "cifar-100-python", ("train",), "test",
    b"fine_labels", (0.507, 0.487, 0.441), (0.267, 0.256, 0.276), "CIFAR100",
)


def _read_batch(path: Path) -> dict:
    """One python-version batch, unpickled with NumPy arrays as the only objects allowed."""
    with open(path, "rb") as f:
        return load_array_dict(f, "bytes", path, "a CIFAR batch dict", "use the unmodified python-version archive "
                               "from https://www.cs.toronto.edu/~kriz/cifar.html")


def _images(batch: dict) -> np.ndarray:
    return np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)


def _superclass_of(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """coarse class of each fine class, checked to be a function of the fine label."""
    num_fine = int(fine.max()) + 1
    table = np.full(num_fine, -1, dtype=np.int64)
    table[fine] = coarse  # any one occurrence per fine class
    if (table < 0).any() or not np.array_equal(table[fine], coarse):
        raise UsageError("CIFAR-100 coarse_labels are not consistent with fine_labels in the train file")
    return table


@functools.lru_cache(maxsize=4)
def _decode(layout: CifarLayout, folder: str) -> BaseData:
    root = Path(folder)
    train = [_read_batch(root / name) for name in layout.train_files]
    test = _read_batch(root / layout.test_file)
    train_y = np.concatenate([np.asarray(b[layout.label_key], dtype=np.int64) for b in train])
    superclass = None
    if b"coarse_labels" in train[0]:
        coarse = np.concatenate([np.asarray(b[b"coarse_labels"], dtype=np.int64) for b in train])
        superclass = _superclass_of(train_y, coarse)
    return BaseData(
        train_x=np.concatenate([_images(b) for b in train]),
        train_y=train_y,
        test_x=_images(test),
        test_y=np.asarray(test[layout.label_key], dtype=np.int64),
        mean=layout.mean,
        std=layout.std,
        superclass=superclass,
    )


def _load(layout: CifarLayout, data_root: str | None, download: bool) -> BaseData:
    roots = locate.dedupe([*locate.user_roots(data_root), locate.CACHE_DIR])
    files = [*layout.train_files, layout.test_file]
    found = locate.first_with([r / layout.folder for r in roots], files)
    if found is None and download:
        target = locate.download_root(data_root)
        try:
            import torchvision.datasets

            getattr(torchvision.datasets, layout.torchvision_class)(str(target), train=True, download=True)
        except Exception as err:  # network or disk trouble: say what failed and how to fix it
            raise UsageError(f"downloading {layout.title} into {target} failed ({err}); "
                             f"pass --data-root DIR containing {layout.folder}/") from err
        found = locate.first_with([target / layout.folder], files)
    if found is None:
        looked = ", ".join(str(r / layout.folder) for r in roots)
        raise UsageError(f"{layout.title} files not found; looked in: {looked}. "
                         f"Fix: pass --download, or --data-root DIR containing {layout.folder}/, "
                         f"or set ${locate.ENV_VAR}")
    return _decode(layout, str(found.resolve()))


def load_cifar10(data_root: str | None = None, download: bool = False) -> BaseData:
    """CIFAR-10 as uint8 N×3×32×32 arrays (50,000 train / 10,000 test)."""
    return _load(CIFAR10, data_root, download)


def load_cifar100(data_root: str | None = None, download: bool = False) -> BaseData:
    """CIFAR-100 (fine labels) as uint8 N×3×32×32 arrays, with the fine->coarse superclass table."""
    return _load(CIFAR100, data_root, download)
