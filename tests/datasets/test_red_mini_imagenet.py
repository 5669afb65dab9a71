"""Red Mini-ImageNet (CNWL, 32×32, FaMUS layout) on disk: list-file order and labels, JPEG/PNG by content,
the --data-root variants, one-line errors, and runs whose clean training labels are unknown."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli
from torchvision.io import encode_jpeg, encode_png

from bench.core.errors import UsageError
from bench.core.specs import OptimSpec, ScheduleSpec
from noisytail_datasets import DATASETS, DataSpec, build_data, describe, load_base
from noisytail_datasets.red_mini_imagenet import dataset_name, read_list

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

DATASET = "red-mini-imagenet-40"
# (name, label) in list order: ImageNet names, 16-hex web names, labels spanning 0-99, not sorted by either
TRAIN_LINES = (
    ("n0170432300000003.jpg", 57), ("0123456789abcdef.jpg", 0), ("n0170432300000001.jpg", 0),
    ("fedcba9876543210.jpg", 99), ("n0451500300000012.jpg", 57), ("a1b2c3d4e5f60718.jpg", 57),
    ("n0210100600000007.jpg", 99), ("n0170432300000002.jpg", 0), ("00000000deadbeef.jpg", 99),
)
PNG_NAME = "a1b2c3d4e5f60718.jpg"  # PNG content under a .jpg name, as PIL (FaMUS) would read it
TEST_LINES = (
    ("ILSVRC2012_val_00000002.jpg", 99), ("ILSVRC2012_val_00000001.jpg", 0), ("ILSVRC2012_val_00000005.jpg", 57),
    ("ILSVRC2012_val_00000003.jpg", 0), ("ILSVRC2012_val_00000004.jpg", 57), ("ILSVRC2012_val_00000006.jpg", 99),
)
# the 20% level lists other images of the same classes, in its own order
LEVEL_20_LINES = (("n0170432300000001.jpg", 0), ("1111222233334444.jpg", 99))


def colour_of(index: int, label: int) -> tuple[int, int, int]:
    """A flat RGB colour per image (JPEG keeps flat colours within a few levels)."""
    return (2 * label + 20, 25 * index % 240 + 10, 230 - 20 * index % 220)


def write_image(path: Path, rgb: tuple[int, int, int], size: int = 32, png: bool = False) -> None:
    image = torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1).expand(3, size, size).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((encode_png(image) if png else encode_jpeg(image, quality=95)).numpy().tobytes())


def write_split(folder: Path, list_name: str, image_dir: Path, lines: tuple[tuple[str, int], ...]) -> None:
    """`folder/split/<list_name>` (one space, `\\n`) and its images under `image_dir/<label>/<name>`."""
    (folder / "split").mkdir(parents=True, exist_ok=True)
    (folder / "split" / list_name).write_bytes("".join(f"{n} {y}\n" for n, y in lines).encode("ascii"))
    for index, (name, label) in enumerate(lines):
        write_image(image_dir / str(label) / name, colour_of(index, label), png=name == PNG_NAME)


def write_release(folder: Path) -> Path:
    """A `mini-imagenet/` folder with the 0.4 and 0.2 training lists and the clean test list; returns it."""
    write_split(folder, "red_noise_nl_0.4", folder / "training_s32" / "red_noise_nl_0.4", TRAIN_LINES)
    write_split(folder, "red_noise_nl_0.2", folder / "training_s32" / "red_noise_nl_0.2", LEVEL_20_LINES)
    write_split(folder, "clean_validation", folder / "validation_s32", TEST_LINES)
    (folder / "class_name.txt").write_text("not read\n")
    return folder


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A data root holding a few-class mini-imagenet/ (enough to load; building a bundle needs every class)."""
    root = tmp_path_factory.mktemp("cnwl_root")
    write_release(root / "mini-imagenet")
    return root


def every_class_lines(per_class: int, prefix: str) -> tuple[tuple[str, int], ...]:
    """`per_class` images of each of the 100 classes, web and ImageNet names, in a shuffled order."""
    lines = [(f"{prefix}{c:02d}{k:012x}.jpg" if k % 2 else f"n01704323{100 * c + k:08d}.jpg", c)
             for c in range(100) for k in range(per_class)]
    order = np.random.default_rng(0).permutation(len(lines))
    return tuple(lines[i] for i in order)


@pytest.fixture(scope="module")
def full_release(tmp_path_factory) -> Path:
    """A data root whose 40% list has 2 images of each of the 100 classes, and 1 test image each."""
    root = tmp_path_factory.mktemp("cnwl_full_root")
    folder = root / "mini-imagenet"
    write_split(folder, "red_noise_nl_0.4", folder / "training_s32" / "red_noise_nl_0.4", every_class_lines(2, "ab"))
    write_split(folder, "clean_validation", folder / "validation_s32", every_class_lines(1, "cd"))
    return root


def assert_images(x: np.ndarray, lines: tuple[tuple[str, int], ...]) -> None:
    for index, (image, (name, label)) in enumerate(zip(x, lines)):
        wanted = np.array(colour_of(index, label), dtype=np.int16).reshape(3, 1, 1)
        tolerance = 0 if name == PNG_NAME else 3
        assert np.abs(image.astype(np.int16) - wanted).max() <= tolerance, name


def test_decodes_in_list_order_with_list_labels(release, no_data_dirs):
    base = load_base(DATASET, data_root=str(release))
    assert base.train_x.shape == (9, 3, 32, 32) and base.train_x.dtype == np.uint8
    assert base.train_y.dtype == np.int64 and base.train_y.tolist() == [y for _, y in TRAIN_LINES]
    assert base.test_x.shape == (6, 3, 32, 32) and base.test_y.tolist() == [y for _, y in TEST_LINES]
    assert_images(base.train_x, TRAIN_LINES)  # includes the exact PNG colours
    assert_images(base.test_x, TEST_LINES)
    assert (base.mean, base.std) == ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276))  # FaMUS's loader
    assert base.clean_labels_known is False
    assert load_base(DATASET, data_root=str(release)) is base  # decoded once per process


def test_each_level_reads_its_own_list_and_shares_the_test_set(release, no_data_dirs):
    level_20 = load_base("red-mini-imagenet-20", data_root=str(release))
    assert level_20.train_y.tolist() == [0, 99]
    assert_images(level_20.train_x, LEVEL_20_LINES)
    assert np.array_equal(level_20.test_x, load_base(DATASET, data_root=str(release)).test_x)


def test_data_root_may_be_the_mini_imagenet_folder_or_bench_data(release, no_data_dirs, monkeypatch):
    via_parent = load_base(DATASET, data_root=str(release))
    direct = load_base(DATASET, data_root=str(release / "mini-imagenet"))
    monkeypatch.setenv("BENCH_DATA", str(release))
    from_env = load_base(DATASET)
    for other in (direct, from_env):
        assert np.array_equal(other.train_x, via_parent.train_x) and np.array_equal(other.test_y, via_parent.test_y)


def test_catalog_entries():
    names = [dataset_name(p) for p in ("0.0", "0.05", "0.1", "0.15", "0.2", "0.3", "0.4", "0.5", "0.6", "0.8")]
    assert names[:2] == ["red-mini-imagenet-0", "red-mini-imagenet-5"] and names[-1] == "red-mini-imagenet-80"
    for name in names:
        info = DATASETS.get(name)
        assert (info.num_classes, info.in_channels, info.image_size) == (100, 3, 32)
        assert (info.augment.pad, info.augment.flip) == (4, True) and info.class_names == ()
        assert info.clean_labels_known is False
    assert "50,010 train" in DATASETS.describe(DATASET)


def one_line_error(data_root: Path, dataset: str = DATASET) -> str:
    with pytest.raises(UsageError) as err:
        load_base(dataset, data_root=str(data_root))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_folder_names_the_layout_and_the_fix(no_data_dirs):
    (no_data_dirs / "mini-imagenet" / "training_s32").mkdir(parents=True)  # no split/: not a copy
    message = one_line_error(no_data_dirs)
    assert str(no_data_dirs / "mini-imagenet") in message and "--data-root" in message
    assert "split/red_noise_nl_0.4" in message and "training_s32/red_noise_nl_0.4/<label>/" in message


def test_missing_list_is_named(tmp_path, no_data_dirs):
    folder = write_release(tmp_path / "mini-imagenet")
    message = one_line_error(tmp_path, "red-mini-imagenet-60")
    assert f"'{folder / 'split' / 'red_noise_nl_0.6'}' not found" in message
    (folder / "split" / "clean_validation").unlink()
    assert f"'{folder / 'split' / 'clean_validation'}' not found" in one_line_error(tmp_path)


def test_first_missing_image_is_named(tmp_path, no_data_dirs):
    folder = write_release(tmp_path / "mini-imagenet")
    images = folder / "training_s32" / "red_noise_nl_0.4"
    (images / "0" / "0123456789abcdef.jpg").unlink()
    (images / "99" / "00000000deadbeef.jpg").unlink()
    message = one_line_error(tmp_path)
    assert f"'{images / '0' / '0123456789abcdef.jpg'}'" in message and "(and 1 more)" in message


@pytest.mark.parametrize("bad", ["a.jpg  1", "a.jpg\t1", "a.jpg", "a.jpg 1 2", "a.jpg 01", "a.jpg x", " a.jpg 1",
                                 "", "sub/a.jpg 1", "a.jpg 1 ", "a.jpg -0"])
def test_malformed_line_is_named(tmp_path, no_data_dirs, bad):
    folder = write_release(tmp_path / "mini-imagenet")
    list_file = folder / "split" / "red_noise_nl_0.4"
    list_file.write_bytes(list_file.read_bytes().replace(b"fedcba9876543210.jpg 99", bad.encode()))
    assert f"malformed line 4 of '{list_file}'" in one_line_error(tmp_path)


@pytest.mark.parametrize("label", [100, -1, 1000])
def test_label_out_of_range_is_named(tmp_path, no_data_dirs, label):
    folder = write_release(tmp_path / "mini-imagenet")
    list_file = folder / "split" / "clean_validation"
    list_file.write_text(list_file.read_text() + f"ILSVRC2012_val_00000007.jpg {label}\n")
    assert f"label {label} on line 7 of '{list_file}' is outside 0-99" in one_line_error(tmp_path)


def test_read_list_accepts_crlf_and_a_missing_final_newline(tmp_path):
    list_file = tmp_path / "red_noise_nl_0.4"
    list_file.write_bytes(b"n0170432300000001.jpg 0\r\n0123456789abcdef.jpg 99")
    assert read_list(list_file) == [("n0170432300000001.jpg", 0), ("0123456789abcdef.jpg", 99)]
    list_file.write_bytes(b"")
    with pytest.raises(UsageError, match="is empty"):
        read_list(list_file)


def test_wrong_size_or_format_is_named(tmp_path, no_data_dirs):
    folder = write_release(tmp_path / "mini-imagenet")
    image = folder / "validation_s32" / "57" / "ILSVRC2012_val_00000005.jpg"
    write_image(image, (1, 2, 3), size=84)
    assert f"'{image}' is 84x84, expected 32x32" in one_line_error(tmp_path)
    image.write_text("not an image")
    assert f"'{image}' is neither JPEG nor PNG" in one_line_error(tmp_path)


def test_bundle_says_clean_labels_are_unknown(full_release, no_data_dirs):
    bundle = build_data(DataSpec(DATASET, meta_per_class=0), data_root=str(full_release))
    assert bundle.clean_labels_known is False and bundle.augment.pad == 4 and bundle.num_classes == 100
    info = describe(bundle)
    assert info["noise_rate"].startswith("unknown") and "transition_matrix" not in info
    assert info["noisy_counts"] == [2] * 100 and info["train_size"] == 200 and info["test_size"] == 100
    with pytest.raises(UsageError, match="--meta-per-class 0"):
        DataSpec(DATASET, meta_per_class=10).validate()


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, *argv)
    return code, out + err


def test_cli_data_describe(full_release, no_data_dirs, capsys):
    code, out = _cli(capsys, "data", "describe", "--dataset", DATASET, "--data-root", str(full_release))
    assert code == 0, out  # --meta-per-class defaults to 0 here
    assert "noise_rate: unknown" in out and "train_size: 200" in out and "test_size: 100" in out
    assert "noise_rate_realized" not in out and "transition_matrix" not in out
    code, out = _cli(capsys, "data", "describe", "--dataset", DATASET, "--data-root", str(full_release), "--json")
    assert code == 0 and json.loads(out)["clean_labels_known"] is False


def test_cli_missing_data_is_one_line_exit_2(no_data_dirs, capsys):
    code, out = _cli(capsys, "data", "describe", "--dataset", DATASET, "--data-root", str(no_data_dirs))
    assert code == 2 and out.strip().count("\n") == 0 and "mini-imagenet/split/red_noise_nl_0.4" in out


def test_cli_run_one(full_release, no_data_dirs, tmp_path, capsys):
    """`run one` needs a default recipe; until one is registered it refuses in one line."""
    from bench.grid.presets import DEFAULT_RECIPES

    code, out = _cli(capsys, "run", "one", "--method", "ce", "--dataset", DATASET, "--data-root", str(full_release),
                     "--backbone", "mlp", "--epochs", "1", "--batch-size", "8", "--device", "cpu",
                     "--out", str(tmp_path / "one"))
    if DATASET in DEFAULT_RECIPES:
        assert code == 0, out
    else:
        assert code == 2 and out.strip().count("\n") == 0 and "has no default recipe" in out


def test_run_trial_trains_and_scores_without_clean_labels(full_release, no_data_dirs):
    from bench.grid.presets import resolve_hparams
    from bench.train.config import RunConfig
    from bench.train.engine import TrialOptions, run_trial

    cfg = RunConfig(data=DataSpec(DATASET, meta_per_class=0), method="ce", backbone="mlp", epochs=1, batch_size=50,
                    seed=0, optim=OptimSpec(lr=0.05), schedule=ScheduleSpec(name="cosine"),
                    hparams=resolve_hparams("ce", {}))
    record = run_trial(cfg, TrialOptions(device="cpu", data_root=str(full_release)))
    assert record["status"] == "done", record.get("error")
    assert record["data"]["clean_labels_known"] is False and record["data"]["train_size"] == 200
    assert len(record["epochs"]) == 1 and 0 <= record["epochs"][0]["test_acc"] <= 100
    assert not math.isnan(record["epochs"][0]["train_loss"])
