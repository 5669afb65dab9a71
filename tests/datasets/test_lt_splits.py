"""ImageNet-LT and Places-LT (OLTR split files) on disk: list order and labels, where the images are
found, the val list as the meta pool, streamed decoding, one-line errors, and `bench data describe`.

Fixtures follow specs/realworld_data.md §5: split files `<Name>_{train,val,test}.txt` with lines
`<relative path> <label>` (one space, `\\n`), ImageNet-style paths `train/<wnid>/<wnid>_<n>.JPEG`,
`val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG` and Places-style `train/<category>/<8 digits>.jpg`,
`val/<category>/Places365_val_<8 digits>.jpg`. Five classes have train counts 120/100/50/20/8 (both
shot rules' boundaries). `build_data` needs every class to have a training image and enough meta-pool
images, so the fixtures used for bundles list every one of the 1000 (365) classes: one training image
and two val-list images per class beyond the five. Image files share one encoded JPEG's bytes, except a
few with their own colours. Creating files is slow on some file systems, so only the images a test can
open are written (`which`): the loader opens just the first `PROBE_RECORDS` of each list at load time
and nothing opens the others unless a test decodes them.
"""
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
from noisytail_datasets.long_tail import FEW, MANY, MEDIUM, shot_groups
from noisytail_datasets.lt_splits import IMAGENET_MEAN, IMAGENET_STD, PROBE_RECORDS, read_list

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

#: label -> number of training images (the shot-rule boundaries), listed out of label order
BOUNDARY = {3: 120, 0: 100, 7: 50, 1: 20, 5: 8}
VAL_PER_CLASS, TEST_PER_CLASS = 2, 3
SIZE = 40  # pixels of the shared fixture image (>= 32)
#: per style: registry name, split-file folder, conventional image folder, number of classes
STYLES = {"imagenet": ("imagenet-lt", "ImageNet_LT", "imagenet", 1000),
          "places": ("places-lt", "Places_LT", "places365", 365)}
PLACES_NAMES = {0: "airfield", 1: "airplane_cabin", 3: "apartment_building-outdoor", 5: "bamboo_forest",
                7: "zen_garden"}


def image_path(style: str, split: str, label: int, k: int) -> str:
    """The relative path of the k-th image of `label` in a split list (the val list points at train images)."""
    if style == "imagenet":
        wnid = f"n{1440764 + label:08d}"  # class 0 is n01440764 as in ImageNet
        if split == "test":
            return f"val/{wnid}/ILSVRC2012_val_{293 + 100 * label + k:08d}.JPEG"
        return f"train/{wnid}/{wnid}_{(10026 if split == 'train' else 90000) + k}.JPEG"
    category = PLACES_NAMES.get(label, f"category_{label:03d}")
    if split == "test":
        return f"val/{category}/Places365_val_{1 + 100 * label + k:08d}.jpg"
    return f"train/{category}/{(1 if split == 'train' else 5001) + k:08d}.jpg"


def split_lines(style: str, split: str, counts: dict[int, int], seed: int) -> list[tuple[str, int]]:
    """(path, label) records of `counts[label]` images per label, in a shuffled (non-label) order."""
    lines = [(image_path(style, split, label, k), label) for label, n in counts.items() for k in range(n)]
    order = np.random.default_rng(seed).permutation(len(lines))
    return [lines[i] for i in order]


def jpeg(rgb: tuple[int, int, int], width: int = SIZE, height: int = SIZE) -> bytes:
    image = torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1).expand(3, height, width).contiguous()
    return encode_jpeg(image, quality=95).numpy().tobytes()


SHARED = jpeg((128, 64, 32))
#: (split, position in its list) -> (rgb, width, height) of the images that differ from the shared one
DISTINCT = {("train", 0): ((200, 30, 60), SIZE, SIZE), ("train", 1): ((20, 180, 90), SIZE, SIZE),
            ("val", 0): ((90, 90, 220), SIZE, SIZE), ("test", 0): ((240, 200, 10), 48, 36)}


def write_release(root: Path, style: str, every_class: bool = False, images: str | None = "lists",
                  which: str = "all") -> dict[str, list[tuple[str, int]]]:
    """Split files under `root/<Name>_LT/` and, unless `images` is None, listed images under the folder
    `images` names: "lists" (beside the split files), "source" (`root/imagenet`, `root/places365`) or
    "root". `which` images: "all", "boundary" (those of the five boundary classes) or "probed" (the
    first `PROBE_RECORDS` of each list); the distinct-colour ones and the probed ones always. Returns
    the records written per split."""
    _, folder_name, source, num_classes = STYLES[style]
    counts = {c: 1 for c in range(num_classes)} if every_class else {}
    counts |= BOUNDARY
    val_counts = {c: VAL_PER_CLASS for c in (range(num_classes) if every_class else BOUNDARY)}
    records = {"train": split_lines(style, "train", counts, 1), "val": split_lines(style, "val", val_counts, 2),
               "test": split_lines(style, "test", {c: TEST_PER_CLASS for c in BOUNDARY}, 3)}
    lists = root / folder_name
    lists.mkdir(parents=True, exist_ok=True)
    for split, lines in records.items():
        (lists / f"{folder_name}_{split}.txt").write_bytes("".join(f"{p} {y}\n" for p, y in lines).encode("ascii"))
    if images is not None:
        base = {"lists": lists, "source": root / source, "root": root}[images]
        made: set[Path] = set()
        for split, lines in records.items():
            for position, (rel, label) in enumerate(lines):
                wanted = (which == "all" or (which == "boundary" and label in BOUNDARY)
                          or position < PROBE_RECORDS or (split, position) in DISTINCT)
                if not wanted:
                    continue
                path = base / rel
                if path.parent not in made:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    made.add(path.parent)
                distinct = DISTINCT.get((split, position))
                path.write_bytes(jpeg(*distinct) if distinct else SHARED)
    return records


@pytest.fixture(scope="module")
def small_imagenet(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("imagenet_lt_small")
    return root, write_release(root, "imagenet", images="source")


@pytest.fixture(scope="module")
def full_imagenet(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("imagenet_lt_full")
    return root, write_release(root, "imagenet", every_class=True, images="source", which="boundary")


@pytest.fixture(scope="module")
def full_places(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("places_lt_full")
    return root, write_release(root, "places", every_class=True, images="lists", which="boundary")


def paths_of(files: ImageFiles) -> list[str]:
    assert isinstance(files, ImageFiles)
    return [str(p) for p in files.paths]


def test_lists_are_read_in_file_order_with_their_labels(small_imagenet, no_data_dirs):
    root, records = small_imagenet
    base = load_base("imagenet-lt", data_root=str(root))
    images = root.resolve() / "imagenet"
    pool_x, pool_y = base.meta_pool
    for (x, y), split in (((base.train_x, base.train_y), "train"), ((pool_x, pool_y), "val"),
                          ((base.test_x, base.test_y), "test")):
        assert y.dtype == np.int64 and y.tolist() == [label for _, label in records[split]], split
        assert paths_of(x) == [str(images / rel) for rel, _ in records[split]], split
    assert base.train_y.tolist() != sorted(base.train_y.tolist())  # the order is the file's, not the labels'
    assert (base.mean, base.std) == (IMAGENET_MEAN, IMAGENET_STD) and base.clean_labels_known
    assert base.class_counts(1000)[list(BOUNDARY)].tolist() == list(BOUNDARY.values())
    assert load_base("imagenet-lt", data_root=str(root)) is base  # read once per process


def test_places_style_lists(full_places, no_data_dirs):
    root, records = full_places
    base = load_base("places-lt", data_root=str(root))
    assert paths_of(base.train_x) == [str(root.resolve() / "Places_LT" / rel) for rel, _ in records["train"]]
    assert base.test_y.tolist() == [label for _, label in records["test"]]
    assert any("/apartment_building-outdoor/" in p for p in paths_of(base.test_x))
    assert (base.mean, base.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert len(base.meta_pool[1]) == 365 * VAL_PER_CLASS


@pytest.mark.parametrize("style", ["imagenet", "places"])
@pytest.mark.parametrize("images", ["lists", "source", "root"])
def test_images_are_found_in_each_documented_folder(tmp_path, no_data_dirs, style, images):
    records = write_release(tmp_path, style, images=images, which="probed")
    name, folder_name, source, _ = STYLES[style]
    base = load_base(name, data_root=str(tmp_path))
    expected = {"lists": tmp_path / folder_name, "source": tmp_path / source, "root": tmp_path}[images].resolve()
    assert paths_of(base.test_x) == [str(expected / rel) for rel, _ in records["test"]]


def test_the_split_files_folder_is_tried_first(tmp_path, no_data_dirs):
    write_release(tmp_path, "imagenet", images="source", which="probed")
    write_release(tmp_path, "imagenet", images="lists", which="probed")  # the same records, beside the lists too
    base = load_base("imagenet-lt", data_root=str(tmp_path))
    assert paths_of(base.train_x)[0].startswith(str(tmp_path.resolve() / "ImageNet_LT" / "train"))


def test_data_root_may_be_the_split_folder_or_bench_data(small_imagenet, no_data_dirs, monkeypatch):
    root, records = small_imagenet
    direct = load_base("imagenet-lt", data_root=str(root / "ImageNet_LT"))  # images in the sibling imagenet/
    rel = records["train"][0][0]
    assert paths_of(direct.train_x)[0] == str(root.resolve() / "imagenet" / rel)
    monkeypatch.setenv("BENCH_DATA", str(root))
    from_env = load_base("imagenet-lt")
    assert paths_of(from_env.train_x) == paths_of(direct.train_x)
    assert np.array_equal(from_env.meta_pool[1], direct.meta_pool[1])


def one_line_error(data_root: Path, dataset: str = "imagenet-lt") -> str:
    with pytest.raises(UsageError) as err:
        load_base(dataset, data_root=str(data_root))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_images_name_the_folders_tried(tmp_path, no_data_dirs):
    records = write_release(tmp_path, "imagenet", images=None)
    (tmp_path / "imagenet" / "train").mkdir(parents=True)  # an unrelated, empty copy
    message = one_line_error(tmp_path)
    for folder in (tmp_path / "ImageNet_LT", tmp_path / "imagenet", tmp_path):
        assert str(folder.resolve()) in message
    assert records["train"][0][0] in message and "val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG" in message


def test_every_list_is_probed(tmp_path, no_data_dirs):
    """Train and val images where the test images are not (ILSVRC val not arranged): no folder qualifies."""
    records = write_release(tmp_path, "places", images="source", which="probed")
    for rel, _ in records["test"][:PROBE_RECORDS]:
        (tmp_path / "places365" / rel).unlink()
    message = one_line_error(tmp_path, "places-lt")
    first_test = records["test"][0][0]
    assert f"closest: {(tmp_path / 'places365').resolve()} lacks '{first_test}' from line 1 of Places_LT_test.txt" in (
        message)


def test_decode_returns_the_pixels_written(small_imagenet, no_data_dirs):
    root, _ = small_imagenet
    base = load_base("imagenet-lt", data_root=str(root))
    for files, split in ((base.train_x, "train"), (base.meta_pool[0], "val"), (base.test_x, "test")):
        for (s, position), (rgb, width, height) in DISTINCT.items():
            if s != split:
                continue
            image = files.decode(position)
            assert image.dtype == torch.uint8 and tuple(image.shape) == (3, height, width)
            wanted = torch.tensor(rgb, dtype=torch.int16).view(3, 1, 1)
            assert (image.to(torch.int16) - wanted).abs().max() <= 3, (split, position)
    assert base.train_x.decode(2).to(torch.int16)[:, 0, 0].tolist() == pytest.approx([128, 64, 32], abs=3)


def test_build_data_draws_the_meta_set_from_the_val_list(full_imagenet, no_data_dirs):
    root, records = full_imagenet
    bundle = build_data(DataSpec("imagenet-lt", meta_per_class=1), data_root=str(root))
    images = root.resolve() / "imagenet"
    train_paths = [str(images / rel) for rel, _ in records["train"]]
    val_paths = {str(images / rel): label for rel, label in records["val"]}
    assert paths_of(bundle.train_x) == train_paths  # kept whole at imbalance 1, in file order
    assert bundle.train_y.tolist() == bundle.train_true_y.tolist() == [label for _, label in records["train"]]
    meta = paths_of(bundle.meta_x)
    assert sorted(bundle.meta_y.tolist()) == list(range(1000))  # one per class
    assert [val_paths[p] for p in meta] == bundle.meta_y.tolist()  # val-list images only, with their labels
    val_order = list(val_paths)
    assert [val_order.index(p) for p in meta] == sorted(val_order.index(p) for p in meta)  # in list order
    assert not set(meta) & set(train_paths) and bundle.meta_from_train == 0
    assert paths_of(bundle.test_x) == [str(images / rel) for rel, _ in records["test"]]
    assert bundle.streamed and bundle.stream == DATASETS.get("imagenet-lt").stream and bundle.image_size == 224
    two = build_data(DataSpec("imagenet-lt", meta_per_class=VAL_PER_CLASS), data_root=str(root))
    assert set(paths_of(two.meta_x)) == set(val_paths)
    with pytest.raises(UsageError, match="fewer than --meta-per-class 3"):
        build_data(DataSpec("imagenet-lt", meta_per_class=3), data_root=str(root))
    info = describe(bundle)
    assert info["train_size"] == 995 + sum(BOUNDARY.values()) and info["meta_size"] == 1000
    assert info["noise_rate_realized"] == 0.0 and info["images"] == "files, streamed at 224x224"


def test_shot_groups_of_the_fixture_counts(small_imagenet, no_data_dirs):
    root, _ = small_imagenet
    counts = load_base("imagenet-lt", data_root=str(root)).class_counts(1000)
    labels = [3, 0, 7, 1, 5]  # 120, 100, 50, 20, 8 images
    assert shot_groups(counts)[labels].tolist() == [MANY, MEDIUM, MEDIUM, MEDIUM, FEW]
    assert shot_groups(counts, "oltr")[labels].tolist() == [MANY, MANY, MEDIUM, FEW, FEW]


def test_catalog_entries():
    for name, classes in (("imagenet-lt", 1000), ("places-lt", 365)):
        info = DATASETS.get(name)
        assert (info.num_classes, info.in_channels, info.image_size) == (classes, 3, 224)
        assert info.clean_labels_known and info.keep_whole_at_rho_1 and info.has_meta_pool
        assert info.stream.size == 224 and info.stream.resize == 256 and info.stream.train_crop == "random-resized"
        assert info.stream.flip and info.stream.color_jitter == (0.4, 0.4, 0.4, 0.0)
        assert info.augment.pad == 0 and not info.augment.flip and info.class_names == ()
    assert "ImageNet_LT/ImageNet_LT_{train,val,test}.txt" in DATASETS.describe("imagenet-lt")
    assert "115,846 train" in DATASETS.describe("imagenet-lt")
    assert "Places_LT/Places_LT_{train,val,test}.txt" in DATASETS.describe("places-lt")


def test_missing_split_files_are_not_found(no_data_dirs):
    (no_data_dirs / "ImageNet_LT").mkdir()
    message = one_line_error(no_data_dirs)
    assert "ImageNet-LT split files not found" in message and str(no_data_dirs / "ImageNet_LT") in message
    assert "<root>/ImageNet_LT/ImageNet_LT_{train,val,test}.txt" in message and "--data-root" in message
    (no_data_dirs / "ImageNet_LT" / "ImageNet_LT_train.txt").write_text("train/a/b.JPEG 0\n")
    (no_data_dirs / "ImageNet_LT" / "ImageNet_LT_test.txt").write_text("val/a/c.JPEG 0\n")
    assert "split file ImageNet_LT_val.txt not found" in one_line_error(no_data_dirs)


@pytest.mark.parametrize("bad", ["train/a/b.JPEG", "train/a/b.JPEG 1 2", "train/a/b.JPEG x", "train/a/b.JPEG -1",
                                 "/abs/b.JPEG 1", "", "train/a/b.JPEG 1.0"])
def test_malformed_line_is_named(tmp_path, no_data_dirs, bad):
    write_release(tmp_path, "imagenet", images=None)
    list_file = tmp_path / "ImageNet_LT" / "ImageNet_LT_val.txt"
    lines = list_file.read_text().split("\n")
    lines[3] = bad
    list_file.write_text("\n".join(lines))
    assert f"malformed line 4 of '{list_file.resolve()}'" in one_line_error(tmp_path)


@pytest.mark.parametrize(("style", "label"), [("imagenet", 1000), ("places", 365), ("places", 999)])
def test_label_out_of_range_is_named(tmp_path, no_data_dirs, style, label):
    write_release(tmp_path, style, images=None)
    name, folder_name, _, classes = STYLES[style]
    list_file = tmp_path / folder_name / f"{folder_name}_test.txt"
    list_file.write_text(list_file.read_text() + f"val/x/y.jpg {label}\n")
    number = len(BOUNDARY) * TEST_PER_CLASS + 1
    assert f"label {label} on line {number} of '{list_file.resolve()}' is outside 0-{classes - 1}" in one_line_error(
        tmp_path, name)


def test_read_list_accepts_crlf_and_a_missing_final_newline(tmp_path):
    list_file = tmp_path / "ImageNet_LT_test.txt"
    list_file.write_bytes(b"val/n01440764/ILSVRC2012_val_00000293.JPEG 0\r\nval/n01443537/x.JPEG 999")
    paths, labels = read_list(list_file, 1000, "ImageNet-LT")
    assert paths == ["val/n01440764/ILSVRC2012_val_00000293.JPEG", "val/n01443537/x.JPEG"]
    assert labels.dtype == np.int64 and labels.tolist() == [0, 999]
    list_file.write_bytes(b"")
    with pytest.raises(UsageError, match="is empty"):
        read_list(list_file, 1000, "ImageNet-LT")


def test_cli_data_describe(full_places, no_data_dirs, capsys):
    root, records = full_places
    code, out, err = run_cli(capsys, "data", "describe", "--dataset", "places-lt", "--data-root", str(root),
                             "--meta-per-class", "1")
    assert code == 0, err
    train_size = 360 + sum(BOUNDARY.values())
    assert f"train_size: {train_size}\n" in out and f"test_size: {len(BOUNDARY) * TEST_PER_CLASS}\n" in out
    assert "meta_size: 365\n" in out and "noise_rate_realized: 0.0000" in out
    assert "images: files, streamed at 224x224" in out
    code, out, err = run_cli(capsys, "data", "describe", "--dataset", "places-lt", "--data-root", str(root),
                             "--meta-per-class", "1", "--json")
    info = json.loads(out)
    assert code == 0 and info["num_classes"] == 365 and info["clean_counts"][3] == 120
    assert [info["clean_counts"][c] for c in (0, 7, 1, 5, 364)] == [100, 50, 20, 8, 1]


def test_cli_missing_files_is_one_line_exit_2(no_data_dirs, capsys):
    code, out, err = run_cli(capsys, "data", "describe", "--dataset", "places-lt", "--data-root", str(no_data_dirs),
                             "--meta-per-class", "1")
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert "Places-LT split files not found" in err and "Places_LT/Places_LT_{train,val,test}.txt" in err


def test_cli_malformed_line_is_one_line_exit_2(tmp_path, no_data_dirs, capsys):
    write_release(tmp_path, "places", images=None)
    list_file = tmp_path / "Places_LT" / "Places_LT_train.txt"
    list_file.write_text(list_file.read_text().replace(" 7\n", "\t7 extra\n", 1))
    code, out, err = run_cli(capsys, "data", "describe", "--dataset", "places-lt", "--data-root", str(tmp_path),
                             "--meta-per-class", "1")
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert "malformed line" in err and "Places_LT_train.txt" in err
