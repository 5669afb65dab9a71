"""ImageNet-LT and Places-LT (Liu et al., CVPR 2019, OLTR): long-tailed subsets defined by split files.

The releases are three list files per dataset (specs/realworld_data.md §5.1); the images are the
user's own ImageNet / Places365 copies and are never downloaded. Lines read `<relative path> <label>`
(one record per line, fields split on whitespace as the OLTR/BALMS loaders do):

    <root>/ImageNet_LT/ImageNet_LT_train.txt   115,846 lines, 1,280 … 5 per class  -> training set
    <root>/ImageNet_LT/ImageNet_LT_val.txt      20,000 lines, 20 per class         -> meta pool
    <root>/ImageNet_LT/ImageNet_LT_test.txt     50,000 lines, 50 per class         -> test set
    paths: train/<wnid>/<wnid>_<n>.JPEG (ImageNet train; the val list also points there) and
           val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG (ILSVRC-2012 val sorted into class folders)

    <root>/Places_LT/Places_LT_{train,val,test}.txt   62,500 / 7,300 (20 per class) / 36,500 (100 per class)
    paths: train/<category>/<8 digits>.jpg (Places365-Standard train, 256x256; the val list too) and
           val/<category>/Places365_val_<8 digits>.jpg (Places365 val sorted into category folders)

`<root>` is `--data-root`, `$BENCH_DATA` or the user cache; `--data-root` may also be the
`ImageNet_LT/` (`Places_LT/`) folder itself. Where the images live is decided once, at load time:
the listed paths are joined to, in turn, the folder holding the split files, `imagenet/`
(`places365/`) beside it, and its parent (i.e. `<root>/ImageNet_LT/`, `<root>/imagenet/`,
`<root>`); the first folder in which the first few records of all three lists exist is used for
every image, and when none qualifies the error names the folders tried.

Decisions:
- Every line is checked before anything else (two fields, a relative path, a plain integer label
  within the classes); a bad line is reported with its file and line number. File order is kept.
- The `_val.txt` list (20 per class, drawn by the OLTR authors from the source's *training* images)
  is `BaseData.meta_pool`, the clean set the trusted meta set is drawn from, as BALMS uses it; no
  training image is held out for it. Labels are clean (`clean_labels_known`), and at imbalance 1
  the release's own long tail is kept whole (`keep_whole_at_rho_1`).
- Images stay on disk (`ImageFiles`) and are streamed with the OLTR/BALMS pipeline: train
  RandomResizedCrop 224 + flip + ColorJitter(0.4, 0.4, 0.4, 0); eval resize 256, centre crop 224;
  ImageNet mean/std for both datasets. Only the first few listed files are checked at load time;
  a file missing further down is named when it is decoded.
- Labels: ImageNet-LT 0–999 in sorted-wnid order, Places-LT 0–364 in alphabetical category order;
  they are taken from the lists as given, so no class names are registered.
- The open-set lists (`*_open.txt`) are not read.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from bench.core.errors import UsageError
from bench.core.registry import Registry

from . import locate
from .augment import AugmentSpec
from .base import BaseData, BaseDatasetInfo
from .images import ImageFiles, StreamTransforms

SPLITS = ("train", "val", "test")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: OLTR / BALMS: RandomResizedCrop 224, flip, ColorJitter(0.4, 0.4, 0.4, 0); eval Resize 256, CenterCrop 224
STREAM = StreamTransforms(size=224, resize=256, train_crop="random-resized", flip=True,
                          color_jitter=(0.4, 0.4, 0.4, 0.0))
#: records per split file whose images must exist where the image folder is decided
PROBE_RECORDS = 3

_LABEL = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Release:
    """One OLTR split release: its registry name, folder names, class count and full-size line counts."""

    name: str
    title: str
    folder: str  # holds <folder>_{train,val,test}.txt
    source: str  # the conventional folder of the source images, beside `folder`
    num_classes: int
    sizes: tuple[int, int, int]  # train, val, test lines of the release
    layout: str  # the image paths the lists use

    def list_name(self, split: str) -> str:
        return f"{self.folder}_{split}.txt"


IMAGENET_LT = Release(
    "imagenet-lt", "ImageNet-LT", "ImageNet_LT", "imagenet", 1000, (115_846, 20_000, 50_000),
    "train/<wnid>/<wnid>_<n>.JPEG (ImageNet train, also used by the val list) and "
    "val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG (ILSVRC-2012 val sorted into wnid folders)")
PLACES_LT = Release(
    "places-lt", "Places-LT", "Places_LT", "places365", 365, (62_500, 7_300, 36_500),
    "train/<category>/<8 digits>.jpg (Places365-Standard train, also used by the val list) and "
    "val/<category>/Places365_val_<8 digits>.jpg (Places365 val sorted into category folders)")
RELEASES = {r.name: r for r in (IMAGENET_LT, PLACES_LT)}


def _is_relative(path: str) -> bool:
    return not (PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()
                or path.startswith(("/", "\\")))


def read_list(path: Path, num_classes: int, title: str) -> tuple[list[str], np.ndarray]:
    """Relative paths and int64 labels of a split file, in file order; UsageError naming the file and
    line number of the first bad line."""
    try:
        lines = locate.text_lines(path, title, "split file ")
    except OSError as err:
        raise UsageError(f"{title}: cannot read split file '{path}' ({err}); restore it from the release") from err
    if not lines:
        raise UsageError(f"{title}: split file '{path}' is empty; use the released file")
    paths: list[str] = []
    labels = np.empty(len(lines), dtype=np.int64)
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) != 2 or _LABEL.fullmatch(fields[1]) is None or not _is_relative(fields[0]):
            raise UsageError(f"{title}: malformed line {number} of '{path}': {line!r}; expected "
                             "'<relative image path> <label>' with a non-negative integer label")
        label = int(fields[1])
        if label >= num_classes:
            raise UsageError(f"{title}: label {label} on line {number} of '{path}' is outside "
                             f"0-{num_classes - 1}; use the released file")
        paths.append(fields[0])
        labels[number - 1] = label
    return paths, labels


def image_folder_candidates(release: Release, split_folder: Path) -> list[Path]:
    """Where listed paths are looked up, in order: the split files' folder, `<source>/` beside it, its parent."""
    return locate.dedupe([split_folder, split_folder.parent / release.source, split_folder.parent])


def find_image_folder(release: Release, split_folder: Path, lists: dict[str, tuple[list[str], np.ndarray]]) -> Path:
    """The first candidate folder holding the first `PROBE_RECORDS` images of every split list; the
    error names the folders tried and the first image missing from the closest one."""
    probes = [(split, line, rel) for split in SPLITS for line, rel in enumerate(lists[split][0][:PROBE_RECORDS], 1)]
    candidates = image_folder_candidates(release, split_folder)
    missing = {}
    for folder in candidates:
        missing[folder] = [p for p in probes if not os.path.isfile(os.path.join(folder, p[2]))]
        if not missing[folder]:
            return folder
    closest = min(candidates, key=lambda folder: len(missing[folder]))  # the first of the closest on a tie
    split, line, rel = missing[closest][0]
    raise UsageError(
        f"{release.title}: the listed images are in none of {', '.join(str(c) for c in candidates)} (the first "
        f"{PROBE_RECORDS} records of each split file must all be in one of them; closest: {closest} lacks '{rel}' "
        f"from line {line} of {release.list_name(split)}). Expected {release.layout}. Fix: put the image folders "
        f"in {split_folder.parent / release.source} (or beside the split files)")


@functools.lru_cache(maxsize=4)
def _load(name: str, split_folder: str) -> BaseData:
    release = RELEASES[name]
    folder = Path(split_folder)
    lists = {split: read_list(folder / release.list_name(split), release.num_classes, release.title)
             for split in SPLITS}
    images = str(find_image_folder(release, folder, lists))

    def files(split: str) -> ImageFiles:
        return ImageFiles(np.array([os.path.join(images, rel) for rel in lists[split][0]], dtype=object))

    return BaseData(files("train"), lists["train"][1], files("test"), lists["test"][1], IMAGENET_MEAN, IMAGENET_STD,
                    clean_labels_known=True, meta_pool=(files("val"), lists["val"][1]))


def find_split_folder(release: Release, data_root: str | None) -> tuple[Path | None, str]:
    """The first `<root>/<folder>` or `<root>` holding all three split files, and (when there is
    none) the name of a split file missing beside the others in the first partial copy, else ''."""
    names = [release.list_name(split) for split in SPLITS]
    partial = ""
    for root in locate.dedupe([*locate.user_roots(data_root), locate.CACHE_DIR]):
        for folder in (root / release.folder, root):
            present = [(folder / name).is_file() for name in names]
            if all(present):
                return folder, ""
            if any(present) and not partial:
                partial = ", ".join(n for n, p in zip(names, present) if not p)
    return None, partial


def load_lt_split(name: str, data_root: str | None = None, download: bool = False) -> BaseData:
    """ImageNet-LT or Places-LT (`name`: a key of `RELEASES`) as streamed image files: the train list,
    the test list, and the val list as the meta pool."""
    release = RELEASES[name]
    folder, partial = find_split_folder(release, data_root)
    if folder is None:
        what = f"{release.title} split file {partial}" if partial else f"{release.title} split files"
        raise locate.not_found(
            what, data_root, release.folder, download,
            f"<root>/{release.folder}/{release.folder}_{{train,val,test}}.txt (the OLTR release) and the "
            f"images they list under <root>/{release.folder}/, <root>/{release.source}/ or <root>",
            "copy the split files from the OLTR release, then pass")
    return _load(name, str(folder.resolve()))


def _info(release: Release) -> BaseDatasetInfo:
    return BaseDatasetInfo(release.name, release.num_classes, 3, STREAM.size, AugmentSpec(),
                           functools.partial(load_lt_split, release.name), clean_labels_known=True,
                           keep_whole_at_rho_1=True, stream=STREAM, has_meta_pool=True, report_shots=True)


def _description(release: Release, source: str, cites: str) -> str:
    train, val, test = release.sizes
    return (f"{release.title} {source}, {release.num_classes} classes, long-tailed {train:,} train / {val:,} val "
            f"(meta pool) / {test:,} test, streamed at 224 ({cites}); --data-root DIR with "
            f"{release.folder}/{release.folder}_{{train,val,test}}.txt, images under {release.folder}/, "
            f"{release.source}/ or DIR (train/, val/ class folders)")


def register(datasets: Registry[BaseDatasetInfo]) -> None:
    """Add "imagenet-lt" and "places-lt" to the dataset registry."""
    datasets.add(IMAGENET_LT.name, _info(IMAGENET_LT),
                 _description(IMAGENET_LT, "subset of ImageNet", "Liu et al. 2019"))
    datasets.add(PLACES_LT.name, _info(PLACES_LT),
                 _description(PLACES_LT, "subset of Places365", "Liu et al. 2019"))
