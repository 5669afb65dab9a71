"""mini-WebVision on disk (WebVision 1.0 Google lists, val_images_256/, ImageNet val in class folders):
list parsing and the label < 50 filter, both ImageNet val layouts, streamed files, clear one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli
from torchvision.io import encode_jpeg

from bench.core.errors import UsageError
from noisytail_datasets import DATASETS, DataSpec, build_data, describe, load_base
from noisytail_datasets.images import ImageFiles
from noisytail_datasets.webvision import IMAGENET_MEAN, IMAGENET_STD, read_list

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

DATASET = "mini-webvision"
CLASSES = 50
SIZE = 32
#: a fixed label order for the list files, so that file order is neither label order nor sorted paths
TRAIN_ORDER = [(7 * i) % CLASSES for i in range(CLASSES)]
#: lines with labels of the other 950 classes (their images do not exist: they must never be looked at)
OTHER_LABELS = (50, 999, 123)


def wnid(c: int) -> str:
    return f"n{1440764 + 1000 * c:08d}"


def colour(kind: int, label: int, k: int) -> tuple[int, int, int]:
    """A flat RGB colour per image (JPEG keeps flat colours within a few levels)."""
    return (60 * kind + 20, 4 * label + 10, 100 * k + 30)


def write_jpeg(path: Path, rgb: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1).expand(3, SIZE, SIZE).contiguous()
    path.write_bytes(encode_jpeg(image, quality=95).numpy().tobytes())


def write_release(root: Path, imagenet: str = "numbered") -> dict[str, list]:
    """A WebVision root in the release layout with ImageNet val as `imagenet/val/<c>/` ("numbered") or
    `imagenet/val/<wnid>/` ("wnid"); returns the expected (relative path, label, colour) of each split."""
    info = root / "info"
    info.mkdir(parents=True)
    train_lines = [f"google/q0999/{i:06d}.jpg {label}" for i, label in enumerate(OTHER_LABELS)]  # filtered out
    train = []
    for k in range(2):
        for label in TRAIN_ORDER:
            relpath = f"google/q{label + 1:04d}/{label:04d}_{k:06d}.jpg"
            write_jpeg(root / relpath, colour(0, label, k))
            train.append((relpath, label, colour(0, label, k)))
            train_lines.append(f"{relpath} {label}")
            if label == 21:
                train_lines.append(f"google/q0999/x{k}.jpg 50")
    (info / "train_filelist_google.txt").write_text("\n".join(train_lines) + "\n")
    val_lines, val = [], []
    for i, label in enumerate(reversed(TRAIN_ORDER), start=1):
        name = f"val{i:06d}.jpg"
        write_jpeg(root / "val_images_256" / name, colour(1, label, 0))
        val.append((name, label, colour(1, label, 0)))
        val_lines.append(f"{name} {label}")
    val_lines.insert(3, "val000999.jpg 500")
    (info / "val_filelist.txt").write_text("\n".join(val_lines) + "\n")
    (info / "synsets.txt").write_text("".join(f"{wnid(c)} class {c}, words\n" for c in range(60)))
    imagenet_rows = []
    for c in range(CLASSES):
        folder = root / "imagenet" / "val" / (str(c) if imagenet == "numbered" else wnid(c))
        names = [f"ILSVRC2012_val_{c * 100 + 9:08d}.JPEG", f"ILSVRC2012_val_{c * 100 + 10:08d}.png"]
        for k, name in reversed(list(enumerate(names))):  # written out of name order on purpose
            write_jpeg(folder / name, colour(2, c, k))  # JPEG bytes under a .png name: decoded by content
        imagenet_rows += [(str((folder / name).relative_to(root)), c, colour(2, c, k)) for k, name in enumerate(names)]
        (folder / "readme.txt").write_text("not an image")  # other files are ignored
    return {"train": train, "val": val, "imagenet": imagenet_rows}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, dict[str, list]]:
    """A data root holding webvision/ with ImageNet val in integer-named folders."""
    root = tmp_path_factory.mktemp("webvision_root")
    return root, write_release(root / "webvision")


@pytest.fixture(scope="module")
def wnid_release(tmp_path_factory) -> tuple[Path, dict[str, list]]:
    """A WebVision root itself (no webvision/ level) with ImageNet val in wnid-named folders."""
    root = tmp_path_factory.mktemp("webvision_wnid")
    return root, write_release(root, imagenet="wnid")


def assert_pixels(files: ImageFiles, colours: list[tuple[int, int, int]]) -> None:
    assert len(files) == len(colours)
    for i, rgb in enumerate(colours):
        image = files.decode(i)
        assert image.shape == (3, SIZE, SIZE) and image.dtype == torch.uint8
        wanted = torch.tensor(rgb, dtype=torch.int16).view(3, 1, 1)
        assert (image.to(torch.int16) - wanted).abs().max() <= 3, files.paths[i]


def test_train_and_val_follow_the_lists_keeping_labels_below_50(release, no_data_dirs):
    root, rows = release
    base = load_base(DATASET, data_root=str(root))
    folder = (root / "webvision").resolve()
    assert isinstance(base.train_x, ImageFiles) and isinstance(base.test_x, ImageFiles)
    assert base.train_y.dtype == np.int64 and base.train_y.tolist() == [label for _, label, _ in rows["train"]]
    assert base.train_y.tolist()[:3] == [0, 7, 14]  # file order, lines with labels >= 50 dropped
    assert list(base.train_x.paths) == [str(folder / relpath) for relpath, _, _ in rows["train"]]
    assert base.test_y.tolist() == [label for _, label, _ in rows["val"]] and len(base.test_y) == CLASSES
    assert list(base.test_x.paths) == [str(folder / "val_images_256" / name) for name, _, _ in rows["val"]]
    assert all(Path(p).is_absolute() for p in [*base.train_x.paths, *base.test_x.paths])
    assert_pixels(base.train_x, [rgb for _, _, rgb in rows["train"]])
    assert_pixels(base.test_x, [rgb for _, _, rgb in rows["val"]])
    assert (base.mean, base.std) == (IMAGENET_MEAN, IMAGENET_STD) and base.clean_labels_known is False
    assert base.meta_pool is None and set(base.extra_tests) == {"imagenet"}
    assert load_base(DATASET, data_root=str(root)) is base  # read once per process


@pytest.mark.parametrize("layout", ["numbered", "wnid"])
def test_imagenet_val_in_either_layout_is_read_class_by_class_in_name_order(release, wnid_release, layout,
                                                                            no_data_dirs):
    root, rows = release if layout == "numbered" else wnid_release
    files, labels = load_base(DATASET, data_root=str(root)).extra_tests["imagenet"]
    assert labels.dtype == np.int64 and labels.tolist() == [c for c in range(CLASSES) for _ in range(2)]
    folder = (root / "webvision" if layout == "numbered" else root).resolve()
    # class by class, names in sorted order (…09.JPEG before …10.png), readme.txt ignored
    assert list(files.paths) == [str(folder / relpath) for relpath, _, _ in rows["imagenet"]]
    assert Path(files.paths[0]).parent.name == ("0" if layout == "numbered" else "n01440764")
    assert_pixels(files, [rgb for _, _, rgb in rows["imagenet"]])


def test_data_root_may_be_the_webvision_folder_or_bench_data(release, no_data_dirs, monkeypatch):
    root, _ = release
    via_parent = load_base(DATASET, data_root=str(root))
    direct = load_base(DATASET, data_root=str(root / "webvision"))
    monkeypatch.chdir(root)
    relative = load_base(DATASET, data_root="webvision")
    assert relative is direct and Path(relative.train_x.paths[0]).is_absolute()  # keyed by the resolved root
    monkeypatch.setenv("BENCH_DATA", str(root))
    from_env = load_base(DATASET)
    for other in (direct, from_env):
        assert list(other.train_x.paths) == list(via_parent.train_x.paths)
        assert np.array_equal(other.test_y, via_parent.test_y)


def test_catalog_entry():
    info = DATASETS.get(DATASET)
    assert (info.num_classes, info.in_channels, info.image_size) == (CLASSES, 3, 299)
    assert (info.stream.size, info.stream.resize, info.stream.train_crop, info.stream.flip) == (
        299, 320, "random-resized", True)
    assert info.stream.color_jitter is None and info.class_names == ()
    assert info.clean_labels_known is False and info.keep_whole_at_rho_1 is True and info.has_meta_pool is False
    text = DATASETS.describe(DATASET)
    assert "65,944 train" in text and "--data-root DIR with webvision/info/" in text and "\n" not in text


def test_build_data_streams_files_and_keeps_the_imagenet_test_set(release, no_data_dirs):
    root, _ = release
    bundle = build_data(DataSpec(DATASET, meta_per_class=0), data_root=str(root))
    assert bundle.streamed and bundle.stream == DATASETS.get(DATASET).stream and bundle.image_size == 299
    assert bundle.clean_labels_known is False and len(bundle.train_y) == 2 * CLASSES  # rho 1 keeps every image
    files, labels = bundle.extra_tests["imagenet"]
    assert isinstance(files, ImageFiles) and labels.tolist() == [c for c in range(CLASSES) for _ in range(2)]
    info = describe(bundle)
    assert info["extra_test_sizes"] == {"imagenet": 2 * CLASSES} and info["test_size"] == CLASSES
    assert info["noise_rate"].startswith("unknown") and info["noisy_counts"] == [2] * CLASSES
    with pytest.raises(UsageError, match="--meta-per-class 0"):
        DataSpec(DATASET, meta_per_class=10).validate()


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, *argv)
    return code, out + err


def test_cli_data_describe(release, no_data_dirs, capsys):
    root, _ = release
    args = ("data", "describe", "--dataset", DATASET, "--data-root", str(root), "--meta-per-class", "0")
    code, out = _cli(capsys, *args)
    assert code == 0, out
    lines = out.splitlines()
    for line in ("num_classes: 50", "train_size: 100", "test_size: 50", "meta_size: 0", "clean_labels_known: False",
                 "images: files, streamed at 299x299", "extra_test_sizes: {'imagenet': 100}"):
        assert line in lines, line
    assert f"noisy_counts: {[2] * CLASSES}" in lines and "noise_rate: unknown" in out
    assert "transition_matrix" not in out
    code, out = _cli(capsys, *args, "--json")
    info = json.loads(out)
    assert code == 0 and info["clean_labels_known"] is False and info["extra_test_sizes"] == {"imagenet": 100}


def test_cli_missing_data_is_one_line_exit_2(no_data_dirs, capsys):
    (no_data_dirs / "webvision" / "info").mkdir(parents=True)  # no train list: not a copy
    code, out, err = run_cli(capsys, "data", "describe", "--dataset", DATASET, "--data-root", str(no_data_dirs),
                             "--meta-per-class", "0")
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert str(no_data_dirs / "webvision") in err and "webvision/info/train_filelist_google.txt" in err
    assert "--data-root" in err


def test_cli_malformed_line_is_one_line_exit_2(tmp_path, no_data_dirs, capsys):
    write_release(tmp_path / "webvision")
    list_file = tmp_path / "webvision" / "info" / "val_filelist.txt"
    lines = list_file.read_text().split("\n")
    lines[2] = lines[2].replace(" ", " thirty-five ")
    list_file.write_text("\n".join(lines))
    code, out, err = run_cli(capsys, "data", "describe", "--dataset", DATASET, "--data-root", str(tmp_path),
                             "--meta-per-class", "0")
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert f"malformed line 3 of '{list_file}'" in err


def one_line_error(data_root: Path) -> str:
    with pytest.raises(UsageError) as err:
        load_base(DATASET, data_root=str(data_root))
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("bad", ["a.jpg", "a.jpg 1 2", "a.jpg x", "a.jpg 1.0", "", "/abs/a.jpg 1", "a.jpg +1"])
def test_malformed_line_is_named(tmp_path, no_data_dirs, bad):
    write_release(tmp_path)
    list_file = tmp_path / "info" / "train_filelist_google.txt"
    lines = list_file.read_text().split("\n")
    lines[4] = bad
    list_file.write_text("\n".join(lines))
    assert f"malformed line 5 of '{list_file}'" in one_line_error(tmp_path)


@pytest.mark.parametrize("label", [1000, -1])
def test_label_out_of_range_is_named(tmp_path, no_data_dirs, label):
    write_release(tmp_path)
    list_file = tmp_path / "info" / "val_filelist.txt"
    list_file.write_text(list_file.read_text() + f"val000777.jpg {label}\n")
    assert f"label {label} on line {CLASSES + 2} of '{list_file}' is outside 0-999" in one_line_error(tmp_path)


def test_read_list_accepts_crlf_tabs_and_a_missing_final_newline(tmp_path):
    list_file = tmp_path / "val_filelist.txt"
    list_file.write_bytes(b"val000001.jpg 3\r\nval000002.jpg\t999\n\nval000003.jpg  0")
    with pytest.raises(UsageError, match="malformed line 3"):  # a blank line inside the file
        read_list(list_file)
    list_file.write_bytes(b"val000001.jpg 3\r\nval000002.jpg\t999\nval000003.jpg  0\n\n")
    assert read_list(list_file) == [("val000001.jpg", 3), ("val000002.jpg", 999), ("val000003.jpg", 0)]


def test_missing_val_list_or_images_are_named(tmp_path, no_data_dirs):
    write_release(tmp_path)
    first_train = tmp_path / "google" / "q0001" / "0000_000000.jpg"
    first_train.unlink()
    message = one_line_error(tmp_path)
    assert f"image '{first_train}' listed in '{tmp_path / 'info' / 'train_filelist_google.txt'}'" in message
    assert "google_resized_256.tar" in message
    write_jpeg(first_train, (0, 0, 0))
    first_val = tmp_path / "val_images_256" / "val000001.jpg"
    first_val.unlink()
    message = one_line_error(tmp_path)
    assert f"image '{first_val}'" in message and "val_images_256.tar" in message
    (tmp_path / "info" / "val_filelist.txt").unlink()
    assert f"'{tmp_path / 'info' / 'val_filelist.txt'}' not found" in one_line_error(tmp_path)


def test_missing_imagenet_val_names_both_layouts(tmp_path, no_data_dirs):
    write_release(tmp_path, imagenet="wnid")
    val = tmp_path / "imagenet" / "val"
    val.rename(tmp_path / "imagenet" / "elsewhere")
    message = one_line_error(tmp_path)
    assert f"ImageNet val not found in '{val}'" in message
    assert "imagenet/val/<c>/ for c = 0-49" in message and "imagenet/val/<wnid>/" in message


@pytest.mark.parametrize("layout", ["numbered", "wnid"])
def test_missing_or_empty_imagenet_class_folder_is_named(tmp_path, no_data_dirs, layout):
    write_release(tmp_path, imagenet=layout)
    folder = tmp_path / "imagenet" / "val" / ("17" if layout == "numbered" else wnid(17))
    for path in folder.iterdir():
        if path.suffix != ".txt":
            path.unlink()
    message = one_line_error(tmp_path)
    assert f"folder '{folder}' of class 17 is empty" in message
    assert "imagenet/val/<c>/" in message and "imagenet/val/<wnid>/" in message
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    assert f"folder '{folder}' of class 17 is missing" in one_line_error(tmp_path)


def test_the_layout_is_chosen_once_and_never_mixed(tmp_path, no_data_dirs):
    write_release(tmp_path, imagenet="wnid")
    (tmp_path / "imagenet" / "val" / "3").mkdir()  # a stray integer folder selects the integer layout
    assert f"folder '{tmp_path / 'imagenet' / 'val' / '0'}' of class 0 is missing" in one_line_error(tmp_path)


@pytest.mark.parametrize("synsets, wanted", [("".join(f"{wnid(c)} x\n" for c in range(49)), "has 49 lines"),
                                             ("tench n01440764\n", "malformed line 1")], ids=["short", "malformed"])
def test_bad_synsets_file_is_named(tmp_path, no_data_dirs, synsets, wanted):
    write_release(tmp_path, imagenet="wnid")
    (tmp_path / "info" / "synsets.txt").write_text(synsets)
    message = one_line_error(tmp_path)
    assert wanted in message and str(tmp_path / "info" / "synsets.txt") in message
