"""Fashion-MNIST (Xiao et al. 2017) from its IDX `.gz` files: 60,000 train / 10,000 test, 28×28 grey.

Files are looked for in `data_root`, `$BENCH_DATA` (each also with a `fashion-mnist/`
subfolder, and torchvision's `FashionMNIST/raw/` layout), the system copy in
`/usr/share/datasets/fashion-mnist` (Debian package `dataset-fashion-mnist`), then the user cache.
With download=True, missing files are fetched with torchvision into the download root.
"""
from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from bench.core.errors import UsageError

from . import locate
from .base import BaseData

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
MEAN, STD = (0.2860,), (0.3530,)


def _read_idx(path: Path) -> np.ndarray:
    """Decode one gzipped IDX file of unsigned bytes into an array of its declared shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # type code 0x08 = unsigned byte
        raise UsageError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@functools.lru_cache(maxsize=4)
def _decode(folder: str) -> BaseData:
    root = Path(folder)
    arrays = {key: _read_idx(root / name) for key, name in FILES.items()}
    return BaseData(
        train_x=arrays["train_x"][:, None].copy(),
        train_y=arrays["train_y"].astype(np.int64),
        test_x=arrays["test_x"][:, None].copy(),
        test_y=arrays["test_y"].astype(np.int64),
        mean=MEAN,
        std=STD,
    )


def _candidates(data_root: str | None) -> list[Path]:
    folders = []
    for root in [*locate.user_roots(data_root), SYSTEM_DIR, locate.CACHE_DIR]:
        folders += [root, root / "fashion-mnist", root / "FashionMNIST" / "raw"]
    return locate.dedupe(folders)


def load_fashion_mnist(data_root: str | None = None, download: bool = False) -> BaseData:
    """Fashion-MNIST as uint8 N×1×28×28 arrays; UsageError with the fix if the files are missing."""
    candidates = _candidates(data_root)
    found = locate.first_with(candidates, FILES.values())
    if found is None and download:
        target = locate.download_root(data_root)
        try:
            from torchvision.datasets import FashionMNIST

            FashionMNIST(str(target), train=True, download=True)
            FashionMNIST(str(target), train=False, download=True)
        except Exception as err:  # network or disk trouble: say what failed and how to fix it
            raise UsageError(f"downloading Fashion-MNIST into {target} failed ({err}); "
                             "apt-get install dataset-fashion-mnist, or --data-root DIR with the files") from err
        found = locate.first_with([target / "FashionMNIST" / "raw"], FILES.values())
    if found is None:
        looked = ", ".join(str(p) for p in candidates)
        raise UsageError(f"Fashion-MNIST files ({', '.join(FILES.values())}) not found; looked in: {looked}. "
                         "Fix: apt-get install dataset-fashion-mnist, or pass --download, or --data-root DIR")
    return _decode(str(found.resolve()))
