"""mini-WebVision: the Google half of WebVision 1.0 (Li et al., 2017) restricted to its first 50 classes.

Training labels are the search queries' classes (web noise, no clean labels released); evaluation
is on WebVision's own val images of those classes and on the ILSVRC-2012 val images of the same
50 classes (an extra test set named "imagenet"). Layout (specs/realworld_data.md §4), from the
release archives info.tar, google_resized_256.tar and val_images_256.tar:

    <root>/webvision/info/train_filelist_google.txt   lines `<relpath> <label>`, relpath = google/qNNNN/<file>
    <root>/webvision/info/val_filelist.txt            lines `<file name> <label>`
    <root>/webvision/info/synsets.txt                 line c = `<wnid> <words...>` of class c
    <root>/webvision/google/qNNNN/...                 training images (256-pixel resized release)
    <root>/webvision/val_images_256/<file name>       WebVision val images
    <root>/webvision/imagenet/val/<c>/                ILSVRC-2012 val images of class c = 0..49 (DivideMix), or
    <root>/webvision/imagenet/val/<wnid>/             the same with <wnid> = line c of info/synsets.txt

`<root>` is `--data-root`, `$BENCH_DATA` or the user cache; `--data-root` may also be the webvision
folder itself. The WebVision root is the first candidate holding info/train_filelist_google.txt.

Decisions:
- Labels 0–999 in the list files; only lines with a label below 50 are kept, in file order. Every line
  of both lists is checked (two whitespace-separated fields, an integer label 0–999) before anything
  else; a bad line is named by file and line number. Full-size counts: 65,944 train, 2,500 WebVision
  val, 2,500 ImageNet val.
- ImageNet val: the integer-folder variant is used when any of `imagenet/val/0` … `imagenet/val/49`
  exists, else the wnid variant; the choice is made once and every one of the 50 folders must then
  hold at least one image (.jpeg/.jpg/.png, any case; other files are ignored). Files in a folder are
  taken in sorted name order, never the file system's (DivideMix uses `os.listdir` order).
- Images stay on disk (`ImageFiles` of absolute paths) and are streamed; only the first few listed
  train and val images are checked to exist at load time. The pipeline is DivideMix's at d9d3058:
  train Resize 320 → RandomResizedCrop 299 → flip; eval Resize 320 → CenterCrop 299; ImageNet mean/std.
- Loaded once per process (keyed by the resolved root). Nothing is downloaded: WebVision is handed
  out by its authors, and the ImageNet folders must be arranged by the user.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from bench.core.errors import UsageError
from bench.core.registry import Registry

from . import locate
from .augment import AugmentSpec
from .base import BaseData, BaseDatasetInfo
from .images import ImageFiles, StreamTransforms

NAME = "mini-webvision"
TITLE = "mini-WebVision"
FOLDER = "webvision"
TRAIN_LIST = "info/train_filelist_google.txt"
VAL_LIST = "info/val_filelist.txt"
SYNSETS = "info/synsets.txt"
VAL_IMAGES = "val_images_256"
IMAGENET_VAL = "imagenet/val"
NUM_CLASSES = 50
#: labels in the WebVision 1.0 list files (all 1,000 ILSVRC classes)
RELEASE_CLASSES = 1000
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: DivideMix @ d9d3058 (dataloader_webvision.py)
STREAM = StreamTransforms(size=299, resize=320, train_crop="random-resized", flip=True)
#: full-size counts, for users checking their copy
TRAIN_SIZE, VAL_SIZE, IMAGENET_SIZE = 65_944, 2_500, 2_500
#: how many listed images per list are checked to exist at load time
CHECKED_IMAGES = 3
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")

_LABEL = re.compile(r"-?[0-9]+")
_WNID = re.compile(r"n[0-9]{8}")
_IMAGENET_LAYOUTS = (f"{IMAGENET_VAL}/<c>/ for c = 0-{NUM_CLASSES - 1} (DivideMix) or {IMAGENET_VAL}/<wnid>/ "
                     f"with <wnid> = line c of {SYNSETS}")


def _lines(path: Path, what: str) -> list[str]:
    """The lines of a text file, without line ends and trailing blank lines; UsageError naming the file."""
    if not path.is_file():
        raise UsageError(f"{TITLE}: {what} '{path}' not found; extract info.tar of the WebVision 1.0 release there "
                         "or fix --data-root")
    lines = [line.removesuffix("\r") for line in locate.text_lines(path, TITLE)]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_list(path: Path) -> list[tuple[str, int]]:
    """(path or file name, label) of every line of a WebVision list file, in file order; the first
    malformed line (not two whitespace-separated fields, or a label outside 0-999) is a UsageError."""
    records = []
    for number, line in enumerate(_lines(path, "list file"), start=1):
        fields = line.split()
        if len(fields) != 2 or _LABEL.fullmatch(fields[1]) is None or fields[0].startswith("/"):
            raise UsageError(f"{TITLE}: malformed line {number} of '{path}': {line!r}; expected "
                             f"'<relative path> <label>' with an integer label 0-{RELEASE_CLASSES - 1}")
        label = int(fields[1])
        if not 0 <= label < RELEASE_CLASSES:
            raise UsageError(f"{TITLE}: label {label} on line {number} of '{path}' is outside "
                             f"0-{RELEASE_CLASSES - 1}; use the released file")
        records.append((fields[0], label))
    return records


def read_synsets(path: Path) -> list[str]:
    """The wnids of the first 50 classes (line c of info/synsets.txt is class c)."""
    lines = _lines(path, "synset list")
    wnids = []
    for number, line in enumerate(lines[:NUM_CLASSES], start=1):
        fields = line.split(maxsplit=1)
        if not fields or _WNID.fullmatch(fields[0]) is None:
            raise UsageError(f"{TITLE}: malformed line {number} of '{path}': {line!r}; expected '<wnid> <words>' "
                             "such as 'n01440764 tench, Tinca tinca'")
        wnids.append(fields[0])
    if len(wnids) < NUM_CLASSES:
        raise UsageError(f"{TITLE}: '{path}' has {len(wnids)} lines, expected at least {NUM_CLASSES} "
                         f"(one per class); use the released file")
    return wnids


def _selected(records: list[tuple[str, int]], path: Path) -> tuple[list[str], np.ndarray]:
    """The entries with a label below 50, in order; UsageError when there is none."""
    kept = [(name, label) for name, label in records if label < NUM_CLASSES]
    if not kept:
        raise UsageError(f"{TITLE}: '{path}' has no line with a label below {NUM_CLASSES}; use the released file")
    return [name for name, _ in kept], np.array([label for _, label in kept], dtype=np.int64)


def _check_first(paths: list[Path], list_file: Path, expected: str) -> None:
    """UsageError naming the first of the first few listed images that is missing."""
    for path in paths[:CHECKED_IMAGES]:
        if not path.is_file():
            raise UsageError(f"{TITLE}: image '{path}' listed in '{list_file}' not found; expected {expected}")


def _image_files(folder: Path) -> list[Path]:
    """The images of one class folder (.jpeg/.jpg/.png, any case), sorted by name."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=lambda p: p.name)


def imagenet_folders(root: Path) -> list[Path]:
    """The 50 ImageNet val class folders of `root`, class order: integer-named folders when any of
    them exists, else wnid-named ones (wnid of class c = line c of info/synsets.txt)."""
    val = root / IMAGENET_VAL
    numbered = [val / str(c) for c in range(NUM_CLASSES)]
    if any(folder.is_dir() for folder in numbered):
        return numbered
    if (root / SYNSETS).is_file():
        named = [val / wnid for wnid in read_synsets(root / SYNSETS)]
        if any(folder.is_dir() for folder in named):
            return named
    raise UsageError(f"{TITLE}: ImageNet val not found in '{val}'; expected {_IMAGENET_LAYOUTS}, each holding the "
                     "ILSVRC-2012 val images of that class (arrange them there yourself)")


def read_imagenet(root: Path) -> tuple[ImageFiles, np.ndarray]:
    """ImageNet val images of classes 0..49 (class by class, files in name order) and their labels."""
    paths: list[Path] = []
    labels: list[int] = []
    for c, folder in enumerate(imagenet_folders(root)):
        files = _image_files(folder) if folder.is_dir() else []
        if not files:
            state = "is empty" if folder.is_dir() else "is missing"
            raise UsageError(f"{TITLE}: ImageNet val folder '{folder}' of class {c} {state}; expected "
                             f"{_IMAGENET_LAYOUTS}, each holding that class's ILSVRC-2012 val images")
        paths.extend(files)
        labels.extend([c] * len(files))
    return ImageFiles(np.array([str(p) for p in paths], dtype=object)), np.array(labels, dtype=np.int64)


@functools.lru_cache(maxsize=2)
def _load(folder: str) -> BaseData:
    root = Path(folder)
    train_records = read_list(root / TRAIN_LIST)
    val_records = read_list(root / VAL_LIST)  # every line of both lists is checked before any image
    train_names, train_y = _selected(train_records, root / TRAIN_LIST)
    val_names, val_y = _selected(val_records, root / VAL_LIST)
    train_paths = [root / name for name in train_names]
    val_paths = [root / VAL_IMAGES / name for name in val_names]
    _check_first(train_paths, root / TRAIN_LIST, f"google_resized_256.tar extracted in '{root}' (google/qNNNN/...)")
    _check_first(val_paths, root / VAL_LIST, f"val_images_256.tar extracted to '{root / VAL_IMAGES}'")
    imagenet = read_imagenet(root)

    def files(paths: list[Path]) -> ImageFiles:
        return ImageFiles(np.array([str(p) for p in paths], dtype=object))

    return BaseData(files(train_paths), train_y, files(val_paths), val_y, IMAGENET_MEAN, IMAGENET_STD,
                    clean_labels_known=False, extra_tests={"imagenet": imagenet})


def find_root(data_root: str | None) -> Path | None:
    """The first `<root>/webvision` or `<root>` holding info/train_filelist_google.txt."""
    for root in locate.dedupe([*locate.user_roots(data_root), locate.CACHE_DIR]):
        for folder in (root / FOLDER, root):
            if (folder / TRAIN_LIST).is_file():
                return folder
    return None


def load_mini_webvision(data_root: str | None = None, download: bool = False) -> BaseData:
    """mini-WebVision as files on disk: Google train images of classes 0-49 (web labels), WebVision val
    as the test set and ImageNet val of the same classes as extra test set "imagenet"."""
    root = find_root(data_root)
    if root is None:
        raise locate.not_found(
            TITLE, data_root, FOLDER, download,
            f"<root>/{FOLDER}/{TRAIN_LIST}, {VAL_LIST}, {SYNSETS}, google/qNNNN/, {VAL_IMAGES}/ and "
            f"{IMAGENET_VAL}/<c>/ or {IMAGENET_VAL}/<wnid>/",
            "extract info.tar, google_resized_256.tar and val_images_256.tar of WebVision 1.0, arrange the ImageNet "
            "val images of classes 0-49, then pass")
    return _load(str(root.resolve()))


def register(datasets: Registry[BaseDatasetInfo]) -> None:
    """Add "mini-webvision" to the dataset registry `datasets`."""
    datasets.add(NAME, BaseDatasetInfo(NAME, NUM_CLASSES, 3, STREAM.size, AugmentSpec(), load_mini_webvision,
                                       clean_labels_known=False, keep_whole_at_rho_1=True, stream=STREAM,
                                       report_top5=True),
                 f"mini-WebVision (WebVision 1.0 Google, first 50 classes), streamed at {STREAM.size}, "
                 f"{TRAIN_SIZE:,} train with web labels (clean ones unknown) / {VAL_SIZE:,} WebVision val + "
                 f"{IMAGENET_SIZE:,} ImageNet val (Li et al. 2017); --data-root DIR with {FOLDER}/info/, google/, "
                 f"{VAL_IMAGES}/ and {IMAGENET_VAL}/")
