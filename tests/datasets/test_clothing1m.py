"""Clothing1M on disk: list order and labels from the kv files, the official and DivideMix image layouts,
the clean val set as the meta pool, images left on disk, and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli
from torchvision.io import encode_jpeg

from bench.core.errors import UsageError
from noisytail_datasets import DATASETS, DataSpec, build_data, load_base
from noisytail_datasets.clothing1m import CLASS_NAMES, layout_of, read_keys, read_labels
from noisytail_datasets.images import ImageFiles

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

# DivideMix's and ELR+'s constants (specs/realworld_data.md §3.3), written out
CLOTHING1M_MEAN, CLOTHING1M_STD = (0.6959, 0.6537, 0.6371), (0.3113, 0.3192, 0.3214)

C = 14
SIZE = 32


def key_of(split: str, c: int, j: int) -> str:
    """A key under images/<d>/<dd>/ (the deeper levels are not verified; any path below images/ is read)."""
    number = {"train": 1000, "val": 2000, "test": 3000, "cleantrain": 4000}[split] + 40 * j + c
    return f"images/{number % 10}/{number % 97:02d}/{number}.jpg"


# a training key with both labels: 5 in noisy_label_kv.txt, 6 in clean_label_kv.txt
SHARED_KEY = key_of("train", 7, 0)


def fixture_records() -> dict[str, list[tuple[str, int]]]:
    """(key, label) per list, each list in its own order (not sorted by key or by label)."""
    order = np.random.default_rng(7).permutation(2 * C)
    train = [(key_of("train", int(i) % C, int(i) // C), int(i) % C) for i in order]
    assert SHARED_KEY in dict(train)
    val = [(key_of("val", c, j), c) for j in range(2) for c in reversed(range(C))]
    test = [(key_of("test", c, 0), c) for c in (3, 1, 4, 0, 5, 9, 2, 6, 13, 8, 7, 12, 10, 11)]
    clean_train = [(key_of("cleantrain", c, 0), c) for c in (0, 1)]
    return {"train": train, "val": val, "test": test, "clean_train": clean_train}


RECORDS = fixture_records()


def colour_of(key: str) -> tuple[int, int, int]:
    """A flat RGB colour per image (JPEG keeps flat colours within a few levels)."""
    n = int(Path(key).stem)
    return (n % 14 * 17 + 10, (n // 40) % 5 * 50 + 5, (n // 1000) * 45)


def write_jpeg(path: Path, rgb: tuple[int, int, int]) -> None:
    image = torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1).expand(3, SIZE, SIZE).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_jpeg(image, quality=95).numpy().tobytes())


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(f"{line}\n" for line in lines).encode())


def write_release(folder: Path, dividemix: bool = False, images: bool = True) -> Path:
    """The eight txt files of the release in `folder`, and the images under `images/<d>/...` (or, in
    the DivideMix layout, under `<d>/...` beside the lists). Returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    noisy_kv = [(key, label) for key, label in RECORDS["train"]]
    noisy_kv[[k for k, _ in noisy_kv].index(SHARED_KEY)] = (SHARED_KEY, 5)  # its noisy label is 5
    noisy_kv += [(key, (label + 1) % C) for key, label in RECORDS["clean_train"]]  # noisy labels beyond the list
    clean_kv = RECORDS["test"] + RECORDS["clean_train"] + [(SHARED_KEY, 6)] + RECORDS["val"]
    write_lines(folder / "noisy_label_kv.txt", [f"{k} {v}" for k, v in reversed(noisy_kv)])
    write_lines(folder / "clean_label_kv.txt", [f"{k} {v}" for k, v in clean_kv])
    for name, split in (("noisy_train", "train"), ("clean_val", "val"), ("clean_test", "test"),
                        ("clean_train", "clean_train")):
        write_lines(folder / f"{name}_key_list.txt", [k for k, _ in RECORDS[split]])
    write_lines(folder / "category_names_eng.txt", list(CLASS_NAMES))
    (folder / "category_names_chn.txt").write_text("T恤\n衬衫\n", encoding="utf-8")
    if images:
        for split in ("train", "val", "test", "clean_train"):
            for key, _ in RECORDS[split]:
                write_jpeg(folder / (key.removeprefix("images/") if dividemix else key), colour_of(key))
    return folder


def train_labels() -> list[int]:
    return [5 if key == SHARED_KEY else label for key, label in RECORDS["train"]]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A data root holding clothing1m/ in the official layout."""
    root = tmp_path_factory.mktemp("clothing1m_root")
    write_release(root / "clothing1m")
    return root


@pytest.fixture(scope="module")
def dividemix_release(tmp_path_factory) -> Path:
    """A dataset folder in the DivideMix layout (image folders 0/ ... 9/ beside the lists)."""
    return write_release(tmp_path_factory.mktemp("clothing1m_dm") / "Clothing1M", dividemix=True)


def test_lists_give_order_and_labels(release, no_data_dirs):
    base = load_base("clothing1m", data_root=str(release))
    folder = (release / "clothing1m").resolve()
    assert isinstance(base.train_x, ImageFiles) and isinstance(base.test_x, ImageFiles)
    assert list(base.train_x.paths) == [f"{folder}/{key}" for key, _ in RECORDS["train"]]
    assert base.train_y.dtype == np.int64 and base.train_y.tolist() == train_labels()
    assert list(base.test_x.paths) == [f"{folder}/{key}" for key, _ in RECORDS["test"]]
    assert base.test_y.tolist() == [label for _, label in RECORDS["test"]]
    pool_x, pool_y = base.meta_pool
    assert list(pool_x.paths) == [f"{folder}/{key}" for key, _ in RECORDS["val"]]
    assert pool_y.dtype == np.int64 and pool_y.tolist() == [label for _, label in RECORDS["val"]]
    # a key with both labels: the training list takes the noisy one
    assert base.train_y[[k for k, _ in RECORDS["train"]].index(SHARED_KEY)] == 5
    assert (base.mean, base.std) == (CLOTHING1M_MEAN, CLOTHING1M_STD)
    assert base.clean_labels_known is False and base.extra_tests == {}
    assert layout_of(str(release)) == "official"
    assert load_base("clothing1m", data_root=str(release)) is base  # read once per process


def test_decode_gives_the_pixels_written(release, no_data_dirs):
    base = load_base("clothing1m", data_root=str(release))
    for i in (0, 13, len(base.train_y) - 1):
        image = base.train_x.decode(i)
        assert image.dtype == torch.uint8 and tuple(image.shape) == (3, SIZE, SIZE)
        wanted = torch.tensor(colour_of(RECORDS["train"][i][0]), dtype=torch.int16).view(3, 1, 1)
        assert (image.to(torch.int16) - wanted).abs().max() <= 3


def test_dividemix_layout_without_the_images_level(dividemix_release, no_data_dirs):
    base = load_base("clothing1m", data_root=str(dividemix_release))  # --data-root is the dataset folder
    folder = dividemix_release.resolve()
    assert list(base.train_x.paths) == [f"{folder}/{key[len('images/'):]}" for key, _ in RECORDS["train"]]
    assert base.train_y.tolist() == train_labels()
    assert list(base.meta_pool[0].paths)[0] == f"{folder}/{RECORDS['val'][0][0][len('images/'):]}"
    assert layout_of(str(dividemix_release)) == "dividemix"
    wanted = torch.tensor(colour_of(RECORDS["test"][2][0]), dtype=torch.int16).view(3, 1, 1)
    assert (base.test_x.decode(2).to(torch.int16) - wanted).abs().max() <= 3


def test_bench_data_finds_the_dataset_folder(release, no_data_dirs, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(release))
    assert load_base("clothing1m") is load_base("clothing1m", data_root=str(release / "clothing1m"))


def test_meta_set_is_drawn_from_clean_val_only(release, no_data_dirs):
    bundle = build_data(DataSpec("clothing1m", meta_per_class=1), data_root=str(release))
    folder = (release / "clothing1m").resolve()
    val_paths = {f"{folder}/{key}" for key, _ in RECORDS["val"]}
    assert isinstance(bundle.meta_x, ImageFiles) and set(bundle.meta_x.paths) <= val_paths
    assert sorted(bundle.meta_y.tolist()) == list(range(C)) and len(set(bundle.meta_x.paths)) == C
    labels = dict(RECORDS["val"])
    assert [labels[p[len(str(folder)) + 1:]] for p in bundle.meta_x.paths] == bundle.meta_y.tolist()
    # no training image is held out: the whole list, in order, with its noisy labels
    assert list(bundle.train_x.paths) == [f"{folder}/{key}" for key, _ in RECORDS["train"]]
    assert bundle.train_y.tolist() == train_labels() and bundle.meta_from_train == 0
    assert bundle.streamed and bundle.stream == DATASETS.get("clothing1m").stream
    assert (bundle.mean, bundle.std) == (CLOTHING1M_MEAN, CLOTHING1M_STD) and len(bundle.test_y) == C
    whole = build_data(DataSpec("clothing1m", meta_per_class=2), data_root=str(release))
    assert set(whole.meta_x.paths) == val_paths  # 2 per class is the whole fixture pool
    with pytest.raises(UsageError, match="fewer than --meta-per-class 3"):
        build_data(DataSpec("clothing1m", meta_per_class=3), data_root=str(release))


def test_catalog_entry():
    info = DATASETS.get("clothing1m")
    assert (info.num_classes, info.in_channels, info.image_size) == (C, 3, 224)
    assert info.class_names == CLASS_NAMES and CLASS_NAMES[0] == "T-shirt" and CLASS_NAMES[13] == "Underwear"
    assert info.clean_labels_known is False and info.keep_whole_at_rho_1 and info.has_meta_pool
    stream = info.stream
    assert (stream.size, stream.resize, stream.train_crop, stream.flip, stream.color_jitter) == (
        224, 256, "random", True, None)
    assert "--data-root" in DATASETS.describe("clothing1m") and "\n" not in DATASETS.describe("clothing1m")


def one_line_error(data_root: Path) -> str:
    with pytest.raises(UsageError) as err:
        load_base("clothing1m", data_root=str(data_root))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_only_the_lists_used_are_required(tmp_path, no_data_dirs):
    folder = write_release(tmp_path / "clothing1m")
    for unused in ("clean_train_key_list.txt", "category_names_eng.txt", "category_names_chn.txt"):
        (folder / unused).unlink()
    assert load_base("clothing1m", data_root=str(tmp_path)).train_y.tolist() == train_labels()
    (folder / "clean_val_key_list.txt").unlink()
    message = one_line_error(tmp_path)
    assert f"'{folder}' holds" in message and "but not clean_val_key_list.txt" in message


def test_missing_folder_names_the_layout_and_the_fix(no_data_dirs):
    (no_data_dirs / "clothing1m" / "images").mkdir(parents=True)  # no lists: not a copy
    message = one_line_error(no_data_dirs)
    assert str(no_data_dirs / "clothing1m") in message and "--data-root" in message
    assert "noisy_train_key_list.txt" in message and "images/0/" in message


def test_images_in_neither_layout_name_both_paths(tmp_path, no_data_dirs):
    folder = write_release(tmp_path / "clothing1m", images=False)
    first = RECORDS["train"][0][0]
    message = one_line_error(tmp_path)
    assert f"'{folder.resolve()}/{first}' (official layout)" in message
    assert f"'{folder.resolve()}/{first[len('images/'):]}' (DivideMix layout" in message


@pytest.mark.parametrize("bad", ["images/0/1.jpg", "images/0/1.jpg x", "images/0/1.jpg 1 2", " images/0/1.jpg 1",
                                 "images/0/1.jpg 1 ", "", "images/0/1.jpg -1", "images/0/1.jpg 1.0"])
def test_malformed_kv_line_is_named(tmp_path, no_data_dirs, bad):
    folder = write_release(tmp_path / "clothing1m", images=False)
    kv = folder / "clean_label_kv.txt"
    lines = kv.read_text().split("\n")
    lines[3] = bad
    kv.write_text("\n".join(lines))
    assert f"malformed line 4 of '{kv.resolve()}'" in one_line_error(tmp_path)


@pytest.mark.parametrize("label", [14, 99])
def test_label_out_of_range_is_named(tmp_path, no_data_dirs, label):
    folder = write_release(tmp_path / "clothing1m", images=False)
    kv = folder / "noisy_label_kv.txt"
    kv.write_text(kv.read_text() + f"images/1/01/9.jpg {label}\n")
    line = len(kv.read_text().splitlines())
    assert f"label {label} on line {line} of '{kv.resolve()}' is outside 0-13" in one_line_error(tmp_path)


@pytest.mark.parametrize("bad", ["images/0/1.jpg 3", "", "images/0/ 1.jpg"])
def test_malformed_key_list_line_is_named(tmp_path, no_data_dirs, bad):
    folder = write_release(tmp_path / "clothing1m", images=False)
    keys = folder / "noisy_train_key_list.txt"
    lines = keys.read_text().split("\n")
    lines[1] = bad
    keys.write_text("\n".join(lines))
    assert f"malformed line 2 of '{keys.resolve()}'" in one_line_error(tmp_path)


def test_listed_key_without_a_label_is_named(tmp_path, no_data_dirs):
    folder = write_release(tmp_path / "clothing1m", images=False).resolve()
    test_list = folder / "clean_test_key_list.txt"
    test_list.write_text(test_list.read_text() + f"{SHARED_KEY}\n" + "images/3/00/777.jpg\n")
    message = one_line_error(tmp_path)
    assert (f"key 'images/3/00/777.jpg' on line {C + 2} of '{test_list}' has no label in "
            f"'{folder / 'clean_label_kv.txt'}'") in message
    test_list.write_text("".join(f"{key}\n" for key, _ in RECORDS["test"]))
    val_list = folder / "clean_val_key_list.txt"  # a noisy-only training key has no clean label
    noisy_only = next(key for key, _ in RECORDS["train"] if key != SHARED_KEY)
    val_list.write_text(f"{noisy_only}\n")
    assert f"on line 1 of '{val_list}' has no label" in one_line_error(tmp_path)


def test_read_keys_accepts_crlf_and_no_final_newline(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_bytes(b"images/0/1.jpg\r\nimages/1/2.jpg")
    assert read_keys(path) == ["images/0/1.jpg", "images/1/2.jpg"]
    path.write_bytes(b"")
    with pytest.raises(UsageError, match="is empty"):
        read_keys(path)


def test_later_kv_line_of_a_key_wins(tmp_path):
    """As in DivideMix's loader (a dict filled line by line); tabs or several spaces separate too."""
    kv = tmp_path / "noisy_label_kv.txt"
    kv.write_bytes(b"images/0/1.jpg 3\nimages/0/2.jpg\t4\nimages/0/1.jpg  13\n")
    assert read_labels(kv) == {"images/0/1.jpg": 13, "images/0/2.jpg": 4}


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, *argv)
    return code, out + err


def test_cli_data_describe(release, no_data_dirs, capsys):
    args = ("data", "describe", "--dataset", "clothing1m", "--data-root", str(release), "--meta-per-class", "1")
    code, out = _cli(capsys, *args)
    assert code == 0, out
    assert "train_size: 28" in out and "test_size: 14" in out and "meta_size: 14" in out
    assert "noise_rate: unknown" in out and "images: files, streamed at 224x224" in out and "Underwear" in out
    assert "transition_matrix" not in out
    code, out = _cli(capsys, *args, "--json")
    info = json.loads(out)
    assert code == 0 and info["clean_labels_known"] is False and info["class_names"] == list(CLASS_NAMES)
    assert info["noisy_counts"] == np.bincount(train_labels(), minlength=C).tolist()


def test_cli_lists_the_dataset(capsys):
    code, out = _cli(capsys, "ls", "datasets")
    assert code == 0 and "clothing1m" in out


def test_cli_missing_data_is_one_line_exit_2(no_data_dirs, capsys):
    code, out = _cli(capsys, "data", "describe", "--dataset", "clothing1m", "--data-root", str(no_data_dirs),
                     "--meta-per-class", "1")
    assert code == 2 and out.strip().count("\n") == 0 and str(no_data_dirs / "clothing1m") in out


def test_cli_malformed_line_is_one_line_exit_2(tmp_path, no_data_dirs, capsys):
    folder = write_release(tmp_path / "clothing1m", images=False)
    kv = folder / "noisy_label_kv.txt"
    kv.write_text("images/0/1.jpg one\n" + kv.read_text())
    code, out = _cli(capsys, "data", "describe", "--dataset", "clothing1m", "--data-root", str(tmp_path),
                     "--meta-per-class", "1")
    assert code == 2 and out.strip().count("\n") == 0 and "malformed line 1 of" in out and "noisy_label_kv" in out
