"""Red Mini-ImageNet (CNWL, Jiang et al., ICML 2020) at 32×32, laid out as FaMUS reads it.

100 mini-ImageNet classes whose training sets mix ImageNet images with web images found by the
class name; at noise level p about a fraction p of each class is a wrongly labelled web image
("red" noise). One dataset per released level: `red-mini-imagenet-<percent>` (0, 5, 10, 15, 20,
30, 40, 50, 60, 80; FaMUS Tab. 7 uses 20, 40, 60, 80). Layout (specs/realworld_data.md §6):

    <root>/mini-imagenet/split/red_noise_nl_<p>            lines `<image name> <label>` (p: 0.0, 0.05 … 0.8)
    <root>/mini-imagenet/split/clean_validation            the clean test list, 5,000 lines
    <root>/mini-imagenet/training_s32/red_noise_nl_<p>/<label>/<image name>   32×32 images
    <root>/mini-imagenet/validation_s32/<label>/<image name>

`<root>` is `--data-root`, `$BENCH_DATA` or the user cache; `--data-root` may also be the
`mini-imagenet/` folder itself. The list file defines the dataset and its order (kept as is); every
line is checked before any image is decoded. Images are decoded with torchvision.io by their content
(JPEG or PNG, whatever the extension says, as PIL does in FaMUS) and converted to RGB. The web
images have no true class among the 100, so `clean_labels_known` is False at every level (the 0%
list included, which is not checked to be noise-free). The release has no images and nothing is
downloaded: the 32×32 folders come from FaMUS's conversion of the CNWL images.
"""
from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path

import numpy as np

from bench.core.errors import UsageError

from . import locate
from .base import BaseData, Loader

FOLDER = "mini-imagenet"
SPLIT_DIR = "split"
TRAIN_IMAGES, TEST_IMAGES = "training_s32", "validation_s32"
TEST_LIST = "clean_validation"
NUM_CLASSES = 100
IMAGE_SIZE = 32
#: FaMUS's loader constants (dataloader_red_mini_imagenet.py)
FAMUS_MEAN = (0.507, 0.487, 0.441)
FAMUS_STD = (0.267, 0.256, 0.276)

#: released noise level as written in the split file name -> number of training lines in the release
RELEASE_SIZES = {"0.0": 50_000, "0.05": 50_000, "0.1": 50_000, "0.15": 50_000, "0.2": 50_000, "0.3": 49_985,
                 "0.4": 50_010, "0.5": 49_962, "0.6": 50_000, "0.8": 50_008}
TEST_SIZE = 5_000
#: the levels of FaMUS Tab. 7
FAMUS_LEVELS = ("0.2", "0.4", "0.6", "0.8")

_LINE = re.compile(r"([^\s/\\]+) (-?[0-9]+)")
_JPEG_MAGIC, _PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


def dataset_name(level: str) -> str:
    """The registry name of noise level `level` ("0.4" -> "red-mini-imagenet-40")."""
    return f"red-mini-imagenet-{round(float(level) * 100)}"


def train_list(level: str) -> str:
    """The split file name of noise level `level` ("0.4" -> "red_noise_nl_0.4")."""
    return f"red_noise_nl_{level}"


def read_list(path: Path) -> list[tuple[str, int]]:
    """(image name, label) of every line of a split file, in file order; UsageError on the first bad line."""
    if not path.is_file():
        raise UsageError(f"Red Mini-ImageNet: split file '{path}' not found; copy split/ from the CNWL release "
                         f"(dataset_no_images/{FOLDER}/split/) or fix --data-root")
    lines = locate.text_lines(path, "Red Mini-ImageNet")
    if not lines:
        raise UsageError(f"Red Mini-ImageNet: split file '{path}' is empty; use the released file")
    records = []
    for number, line in enumerate(lines, start=1):
        match = _LINE.fullmatch(line.removesuffix("\r"))
        if match is None or match.group(2) != str(int(match.group(2))):  # no leading zeros: the folder name
            raise UsageError(f"Red Mini-ImageNet: malformed line {number} of '{path}': {line!r}; expected "
                             "'<image name> <label>' with one space and a plain integer label")
        label = int(match.group(2))
        if not 0 <= label < NUM_CLASSES:
            raise UsageError(f"Red Mini-ImageNet: label {label} on line {number} of '{path}' is outside "
                             f"0-{NUM_CLASSES - 1}; use the released file")
        records.append((match.group(1), label))
    return records


def _decode_image(path: Path) -> np.ndarray:
    from torchvision.io import ImageReadMode, decode_jpeg, decode_png, read_file

    data = read_file(str(path))
    head = bytes(data[:8].tolist())
    decoder = decode_jpeg if head.startswith(_JPEG_MAGIC) else decode_png if head.startswith(_PNG_MAGIC) else None
    if decoder is None:
        raise UsageError(f"Red Mini-ImageNet: '{path}' is neither JPEG nor PNG; replace it with the 32x32 image")
    try:
        image = decoder(data, mode=ImageReadMode.RGB)
    except RuntimeError as err:
        raise UsageError(f"Red Mini-ImageNet: cannot decode '{path}' ({err}); replace the file") from err
    if tuple(image.shape) != (3, IMAGE_SIZE, IMAGE_SIZE):
        raise UsageError(f"Red Mini-ImageNet: '{path}' is {image.shape[2]}x{image.shape[1]}, expected "
                         f"{IMAGE_SIZE}x{IMAGE_SIZE}; use the 32x32 (_s32) images, not the 84x84 ones")
    return image.numpy()


def read_split(list_file: Path, image_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 N×3×32×32 images and int64 labels of one split, in the list file's order."""
    records = read_list(list_file)
    paths = [image_dir / str(label) / name for name, label in records]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"Red Mini-ImageNet: image '{missing[0]}' listed in '{list_file}' not found{more}; "
                         f"expected the FaMUS 32x32 layout {image_dir}/<label>/<image name>")
    images = np.empty((len(paths), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its image codecs in favour of TorchCodec
        warnings.filterwarnings("ignore", message="The image decoding and encoding", category=DeprecationWarning)
        for i, path in enumerate(paths):
            images[i] = _decode_image(path)
    return images, np.array([label for _, label in records], dtype=np.int64)


@functools.lru_cache(maxsize=1)
def _decode_test(folder: str) -> tuple[np.ndarray, np.ndarray]:
    root = Path(folder)
    return read_split(root / SPLIT_DIR / TEST_LIST, root / TEST_IMAGES)


@functools.lru_cache(maxsize=2)
def _decode(folder: str, level: str) -> BaseData:
    root = Path(folder)
    train_x, train_y = read_split(root / SPLIT_DIR / train_list(level), root / TRAIN_IMAGES / train_list(level))
    test_x, test_y = _decode_test(folder)
    return BaseData(train_x, train_y, test_x, test_y, FAMUS_MEAN, FAMUS_STD, clean_labels_known=False)


def find_folder(data_root: str | None) -> Path | None:
    """The first `<root>/mini-imagenet` or `<root>` that holds a `split/` folder."""
    for root in locate.dedupe([*locate.user_roots(data_root), locate.CACHE_DIR]):
        for folder in (root / FOLDER, root):
            if (folder / SPLIT_DIR).is_dir():
                return folder
    return None


def load_red_mini_imagenet(level: str, data_root: str | None = None, download: bool = False) -> BaseData:
    """Red Mini-ImageNet at noise level `level` ("0.4") as uint8 N×3×32×32 arrays (noisy train / clean test)."""
    if level not in RELEASE_SIZES:
        raise UsageError(f"Red Mini-ImageNet: no noise level {level!r}; released: {', '.join(RELEASE_SIZES)}")
    folder = find_folder(data_root)
    if folder is None:
        raise locate.not_found(
            "Red Mini-ImageNet", data_root, FOLDER, download,
            f"<root>/{FOLDER}/{SPLIT_DIR}/{train_list(level)}, {SPLIT_DIR}/{TEST_LIST}, "
            f"{TRAIN_IMAGES}/{train_list(level)}/<label>/ and {TEST_IMAGES}/<label>/", "pass")
    return _decode(str(folder.resolve()), level)


def loader_for(level: str) -> Loader:
    """A registry loader `(data_root, download) -> BaseData` for noise level `level`."""
    return functools.partial(load_red_mini_imagenet, level)
