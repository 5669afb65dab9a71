"""Clothing1M (Xiao et al., CVPR 2015): about a million online-shop clothing photos, 14 classes, real label noise.

The labels of the training images come from the text around them on the shop pages (noisy); a
smaller set was labelled by hand (clean). The release is a folder of text lists plus the untarred
image archives (specs/realworld_data.md §3.1), all directly in the dataset folder:

    <root>/clothing1m/noisy_label_kv.txt          `<image key> <label>`, the noisy labels
    <root>/clothing1m/clean_label_kv.txt          `<image key> <label>`, the hand-checked labels
    <root>/clothing1m/noisy_train_key_list.txt    one key a line: the training images (≈1,000,000)
    <root>/clothing1m/clean_val_key_list.txt      one key a line: clean validation (14,313)
    <root>/clothing1m/clean_test_key_list.txt     one key a line: clean test (10,526)
    <root>/clothing1m/images/0/ … images/9/       the images; a key is their path from the dataset folder

Labels are 0–13 in the order of `CLASS_NAMES`. `<root>` is `--data-root`, `$BENCH_DATA` or the
user cache; `--data-root` may also be the dataset folder itself. Only the five lists above are
read (and required): `clean_train_key_list.txt` (47,570 hand-labelled training images) is used by
none of the tables the harness regenerates, and the category-name files are not read either.

What the loader builds:
- training images: `noisy_train_key_list.txt` in its own order, labelled from `noisy_label_kv.txt`
  (a key that also has a clean label still gets its noisy one: `clean_labels_known` is False, the
  released clean labels cover only a small part of the training images);
- test set: `clean_test_key_list.txt` with labels from `clean_label_kv.txt`;
- meta pool (`BaseData.meta_pool`): `clean_val_key_list.txt` with labels from `clean_label_kv.txt`.
  GDW Tab. 5 uses "the 7k validation set" as its meta set without saying how 7k of the 14,313 were
  picked; `build_data` draws `meta_per_class` images of each class from this pool with a fixed
  seed (class-stratified), so `--meta-per-class 500` gives the 7,000-image meta set (14 × 500), and
  no training image is held out for it.

Every line of every list is checked (grammar, label range, and that each listed key has a label)
before anything else, each error naming the file and the line. Image keys start with `images/`;
two layouts are accepted and chosen once, from the first few keys of each list: the official one,
`<folder>/<key>`, and DivideMix's, which drops the leading `images/` and expects the folders
`0/ … 9/` beside the lists (`<folder>/<key without images/>`; ELR+ points its root at `images/`
with the lists copied into it, which is the same layout). Images stay on disk (`ImageFiles` of
absolute paths) and are streamed at 224×224 with the DivideMix/ELR+ pipeline (resize 256 →
random crop 224 → flip; eval resize 256 → centre crop 224) and their normalisation constants.
A later line for a key already in a kv file replaces the earlier one, as in DivideMix's loader.
Nothing is downloaded: the dataset is handed out by its authors on request. DivideMix's per-epoch
class-balanced subsampling of the training list belongs to the training loop, not to this loader.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.core.errors import UsageError

from . import locate
from .augment import AugmentSpec
from .base import BaseData, BaseDatasetInfo
from .images import ImageFiles, StreamTransforms

if TYPE_CHECKING:
    from bench.core.registry import Registry

NAME = FOLDER = "clothing1m"
NUM_CLASSES = 14
IMAGE_SIZE = 224
#: display names of labels 0..13 (specs/realworld_data.md §3.1); the labels themselves are opaque integers
CLASS_NAMES = ("T-shirt", "Shirt", "Knitwear", "Chiffon", "Sweater", "Hoodie", "Windbreaker", "Jacket", "Down Coat",
               "Suit", "Shawl", "Dress", "Vest", "Underwear")
#: DivideMix's and ELR+'s constants (dataloader_clothing1M.py)
CLOTHING1M_MEAN = (0.6959, 0.6537, 0.6371)
CLOTHING1M_STD = (0.3113, 0.3192, 0.3214)
#: resize the short side to 256, random 224 crop, horizontal flip (eval: resize 256, centre crop 224)
STREAM = StreamTransforms(size=IMAGE_SIZE, resize=256, train_crop="random", flip=True)

NOISY_KV, CLEAN_KV = "noisy_label_kv.txt", "clean_label_kv.txt"
TRAIN_LIST, VAL_LIST, TEST_LIST = "noisy_train_key_list.txt", "clean_val_key_list.txt", "clean_test_key_list.txt"
#: the lists the loader reads, all required
REQUIRED = (NOISY_KV, CLEAN_KV, TRAIN_LIST, VAL_LIST, TEST_LIST)
#: sizes of the full release, to check a copy against ("roughly one million" noisy training images)
RELEASE_SIZES = {"clean_val": 14_313, "clean_test": 10_526, "clean_train": 47_570}

KEY_PREFIX = "images/"
OFFICIAL, DIVIDEMIX = "official", "dividemix"
#: how many keys of each list decide the layout
PROBE_KEYS = 3

_KV_LINE = re.compile(r"(\S+)[ \t]+([0-9]+)")
_KEY_LINE = re.compile(r"\S+")

DESCRIPTION = (f"Clothing1M shop photos, 14 clothing classes, ~1M train with real noisy labels (clean ones unknown) "
               f"/ {RELEASE_SIZES['clean_val']:,} clean val (meta pool) / {RELEASE_SIZES['clean_test']:,} clean test, "
               f"streamed at 224 (Xiao et al. 2015); --data-root DIR with {FOLDER}/ holding the *_kv.txt and "
               "*_key_list.txt files and images/0-9/")


def _lines(path: Path) -> list[str]:
    """The lines of a list file (a final newline ends the last one; a trailing CR is dropped)."""
    lines = locate.text_lines(path, "Clothing1M")
    if not lines:
        raise UsageError(f"Clothing1M: '{path}' is empty; use the released file")
    return [line.removesuffix("\r") for line in lines]


def read_labels(path: Path) -> dict[str, int]:
    """key -> label of a `*_label_kv.txt` file; UsageError naming the first malformed line."""
    labels: dict[str, int] = {}
    for number, line in enumerate(_lines(path), start=1):
        match = _KV_LINE.fullmatch(line)
        if match is None:
            raise UsageError(f"Clothing1M: malformed line {number} of '{path}': {line!r}; expected "
                             "'<image key> <label>' with an integer label")
        label = int(match.group(2))
        if label >= NUM_CLASSES:
            raise UsageError(f"Clothing1M: label {label} on line {number} of '{path}' is outside "
                             f"0-{NUM_CLASSES - 1}; use the released file")
        labels[match.group(1)] = label
    return labels


def read_keys(path: Path) -> list[str]:
    """The keys of a `*_key_list.txt` file, in file order; UsageError naming the first malformed line."""
    keys = _lines(path)
    for number, line in enumerate(keys, start=1):
        if _KEY_LINE.fullmatch(line) is None:
            raise UsageError(f"Clothing1M: malformed line {number} of '{path}': {line!r}; expected one image key "
                             "(no spaces) per line")
    return keys


def labels_of(keys: list[str], labels: dict[str, int], list_file: Path, kv_file: Path) -> np.ndarray:
    """int64 labels of `keys` (read from `list_file`) looked up in `labels` (read from `kv_file`)."""
    out = np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        label = labels.get(key)
        if label is None:
            raise UsageError(f"Clothing1M: key '{key}' on line {i + 1} of '{list_file}' has no label in "
                             f"'{kv_file}'; use the released files together")
        out[i] = label
    return out


def image_path(folder: str, key: str, layout: str) -> str:
    """Where the image of `key` is in `folder` under `layout` (`OFFICIAL` or `DIVIDEMIX`)."""
    return f"{folder}/{key.removeprefix(KEY_PREFIX) if layout == DIVIDEMIX else key}"


def choose_layout(folder: str, key_lists: list[list[str]]) -> str:
    """The layout in which the first `PROBE_KEYS` keys of every list exist; UsageError naming the
    first image missing in each layout when neither holds them all."""
    probe = [key for keys in key_lists for key in keys[:PROBE_KEYS]]
    missing = {}
    for layout in (OFFICIAL, DIVIDEMIX):
        absent = [path for path in (image_path(folder, key, layout) for key in probe) if not os.path.isfile(path)]
        if not absent:
            return layout
        missing[layout] = absent[0]
    raise UsageError(f"Clothing1M: images not found: neither '{missing[OFFICIAL]}' (official layout) nor "
                     f"'{missing[DIVIDEMIX]}' (DivideMix layout, without the images/ level) exists; untar the "
                     f"image archives so that the keys of the lists resolve to {folder}/images/<d>/... "
                     f"or {folder}/<d>/...")


def _image_files(folder: str, keys: list[str], layout: str) -> ImageFiles:
    return ImageFiles(np.array([image_path(folder, key, layout) for key in keys], dtype=object))


@functools.lru_cache(maxsize=2)
def _read(folder: str) -> tuple[BaseData, str]:
    """The dataset in resolved `folder` and its layout, every list checked first."""
    root = Path(folder)
    noisy, clean = read_labels(root / NOISY_KV), read_labels(root / CLEAN_KV)
    train_keys, val_keys, test_keys = (read_keys(root / name) for name in (TRAIN_LIST, VAL_LIST, TEST_LIST))
    train_y = labels_of(train_keys, noisy, root / TRAIN_LIST, root / NOISY_KV)
    val_y = labels_of(val_keys, clean, root / VAL_LIST, root / CLEAN_KV)
    test_y = labels_of(test_keys, clean, root / TEST_LIST, root / CLEAN_KV)
    del noisy, clean
    layout = choose_layout(folder, [train_keys, test_keys, val_keys])
    train_x, val_x, test_x = (_image_files(folder, keys, layout) for keys in (train_keys, val_keys, test_keys))
    base = BaseData(train_x, train_y, test_x, test_y, CLOTHING1M_MEAN, CLOTHING1M_STD, clean_labels_known=False,
                    meta_pool=(val_x, val_y))
    return base, layout


def find_folder(data_root: str | None) -> Path | None:
    """The first `<root>/clothing1m` or `<root>` that holds every list in `REQUIRED`; a UsageError
    naming the missing lists when a candidate holds only some of them."""
    candidates = [folder for root in locate.dedupe([*locate.user_roots(data_root), locate.CACHE_DIR])
                  for folder in (root / FOLDER, root)]
    found = locate.first_with(candidates, REQUIRED)
    if found is not None:
        return found
    for folder in candidates:
        present = [name for name in REQUIRED if (folder / name).is_file()]
        if present:
            lacking = ", ".join(name for name in REQUIRED if name not in present)
            raise UsageError(f"Clothing1M: '{folder}' holds {', '.join(present)} but not {lacking}; copy every "
                             "list of the release into that folder")
    return None


def layout_of(data_root: str | None = None) -> str:
    """The image layout (`OFFICIAL` or `DIVIDEMIX`) of the copy `load_clothing1m` reads for `data_root`."""
    load_clothing1m(data_root)
    return _read(str(find_folder(data_root).resolve()))[1]


def load_clothing1m(data_root: str | None = None, download: bool = False) -> BaseData:
    """Clothing1M as image files: noisy training list / clean test, clean val as the meta pool."""
    folder = find_folder(data_root)
    if folder is None:
        raise locate.not_found(
            "Clothing1M", data_root, FOLDER, download,
            f"<root>/{FOLDER}/ holding {', '.join(REQUIRED)} and the untarred images/0/ ... images/9/",
            "request the dataset from its authors (Xiao et al. 2015), untar the images, then pass")
    return _read(str(folder.resolve()))[0]


def register(datasets: Registry[BaseDatasetInfo]) -> None:
    """Add dataset "clothing1m" to `datasets` (the catalog's `STREAMED_MODULES` loop calls this)."""
    datasets.add(NAME, BaseDatasetInfo(NAME, NUM_CLASSES, 3, IMAGE_SIZE, AugmentSpec(), load_clothing1m,
                                       class_names=CLASS_NAMES, clean_labels_known=False, keep_whole_at_rho_1=True,
                                       stream=STREAM, has_meta_pool=True),
                 DESCRIPTION)
