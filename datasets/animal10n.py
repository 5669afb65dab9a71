"""Animal-10N (Song et al., ICML 2019, SELFIE): 64×64 web images of 5 confusable animal pairs, real label noise.

Raw-image release (specs/realworld_data.md §2.1): two flat folders of `<label>_<id>.jpg` files,
the label being the integer 0–9 before the first `_`:

    <root>/animal10n/training/   50,000 images, labels from the search keyword (noisy, ≈8% estimated)
    <root>/animal10n/testing/     5,000 images, kept only where a human agreed (clean)

`<root>` is `--data-root`, `$BENCH_DATA` or the user cache; `--data-root` may also point at the
dataset folder itself (`<root>/training/`, `<root>/testing/`). Files are read in sorted name
order (never the file system's) and decoded once per process with torchvision.io. The clean
training labels are not released, so `BaseData.clean_labels_known` is False. There is no download:
the dataset is handed out from its project page on request. The binary release (`*.bin`) is not read.
"""
from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path

import numpy as np

from bench.core.errors import UsageError

from . import locate
from .base import BaseData

FOLDER = "animal10n"
TRAIN_DIR, TEST_DIR = "training", "testing"
IMAGE_SIZE = 64
#: display names of labels 0..9 (dataset page); the labels themselves are opaque integers
CLASS_NAMES = ("cat", "lynx", "wolf", "coyote", "cheetah", "jaguar", "chimpanzee", "orangutan", "hamster",
               "guinea pig")
#: the reference pipeline normalises with the ImageNet constants (CMW-Net/PLC lineage, §2.2)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_NAME = re.compile(r"([0-9]+)_(.+)")


def label_of(path: Path) -> int:
    """The label encoded in `<label>_<id>.jpg`; UsageError naming the file when the name is malformed."""
    match = _NAME.fullmatch(path.stem)
    if match is None or int(match.group(1)) >= len(CLASS_NAMES):
        raise UsageError(f"Animal-10N: malformed file name '{path}'; expected <label>_<id>.jpg with a label 0-9")
    return int(match.group(1))


def image_files(folder: Path) -> list[Path]:
    """The `.jpg` files of `folder`, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() == ".jpg" and p.is_file()), key=lambda p: p.name)


def _decode_jpeg(path: Path) -> np.ndarray:
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    try:
        image = decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)
    except RuntimeError as err:
        raise UsageError(f"Animal-10N: cannot decode '{path}' ({err}); replace the file from the release") from err
    if tuple(image.shape) != (3, IMAGE_SIZE, IMAGE_SIZE):
        raise UsageError(f"Animal-10N: '{path}' is {image.shape[2]}x{image.shape[1]}, expected "
                         f"{IMAGE_SIZE}x{IMAGE_SIZE}; use the raw-image release unchanged")
    return image.numpy()


def read_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 N×3×64×64 images and int64 labels of one split folder, in sorted file-name order."""
    files = image_files(folder)
    if not files:
        raise UsageError(f"Animal-10N: no <label>_<id>.jpg files in '{folder}'; "
                         "copy the raw-image release there or fix --data-root")
    labels = np.array([label_of(p) for p in files], dtype=np.int64)  # check every name before decoding
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its image codecs in favour of TorchCodec
        warnings.filterwarnings("ignore", message="The image decoding and encoding", category=DeprecationWarning)
        images = np.stack([_decode_jpeg(p) for p in files])
    return images, labels


@functools.lru_cache(maxsize=2)
def _decode(folder: str) -> BaseData:
    root = Path(folder)
    train_x, train_y = read_split(root / TRAIN_DIR)
    test_x, test_y = read_split(root / TEST_DIR)
    return BaseData(train_x, train_y, test_x, test_y, IMAGENET_MEAN, IMAGENET_STD, clean_labels_known=False)


def find_folder(data_root: str | None) -> Path | None:
    """The first `<root>/animal10n` or `<root>` holding both `training/` and `testing/`."""
    for root in locate.dedupe([*locate.user_roots(data_root), locate.CACHE_DIR]):
        for folder in (root / FOLDER, root):
            if (folder / TRAIN_DIR).is_dir() and (folder / TEST_DIR).is_dir():
                return folder
    return None


def load_animal10n(data_root: str | None = None, download: bool = False) -> BaseData:
    """Animal-10N as uint8 N×3×64×64 arrays (50,000 train with noisy labels / 5,000 clean test)."""
    folder = find_folder(data_root)
    if folder is None:
        raise locate.not_found(
            "Animal-10N images", data_root, FOLDER, download,
            f"<root>/{FOLDER}/{TRAIN_DIR}/ and <root>/{FOLDER}/{TEST_DIR}/ of <label>_<id>.jpg files",
            "request the raw-image release from the Animal-10N page, then pass")
    return _decode(str(folder.resolve()))
