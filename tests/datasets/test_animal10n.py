"""Animal-10N on disk (raw-image release): decoding, labels from file names, sorted order, clear
errors, and a run whose clean training labels are unknown (no noise rate, NaN label accuracy)."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli
from torchvision.io import encode_jpeg

from bench.core.errors import UsageError
from methods.base import Diagnostics
from noisytail_datasets import DATASETS, DataSpec, build_data, describe, load_base
from noisytail_datasets.animal10n import CLASS_NAMES, IMAGENET_MEAN, IMAGENET_STD, label_of

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 2
# ids chosen so that name order differs from numeric order and from creation order ("3_10" < "3_9")
TRAIN_IDS = (9, 10, 2, 100)


def colour_of(label: int, image_id: int) -> tuple[int, int, int]:
    """A flat RGB colour that tells the images apart (JPEG keeps flat colours within a few levels)."""
    return (20 * label + 10, (37 * image_id) % 200 + 30, 240 - 3 * image_id % 200)


def write_jpeg(path: Path, rgb: tuple[int, int, int]) -> None:
    image = torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1).expand(3, 64, 64).contiguous()
    path.write_bytes(encode_jpeg(image, quality=95).numpy().tobytes())


def write_release(folder: Path) -> dict[str, list[str]]:
    """`folder/training/` and `folder/testing/` of `<label>_<id>.jpg`; returns the names written per split."""
    names: dict[str, list[str]] = {"training": [], "testing": []}
    for split, ids in (("training", TRAIN_IDS), ("testing", (1, 3))):
        (folder / split).mkdir(parents=True)
        for image_id in reversed(ids):  # written out of name order on purpose
            for label in range(10):
                name = f"{label}_{image_id + 1000 * (split == 'testing')}.jpg"
                write_jpeg(folder / split / name, colour_of(label, image_id))
                names[split].append(name)
    (folder / "training" / "readme.txt").write_text("not an image")  # other files are ignored
    return names


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """A data root holding animal10n/training/ and animal10n/testing/."""
    root = tmp_path_factory.mktemp("animal10n_root")
    return root, write_release(root / "animal10n")


def test_decodes_sorted_files_with_labels_from_names(release, no_data_dirs):
    root, names = release
    base = load_base("animal10n", data_root=str(root))
    assert base.train_x.shape == (10 * TRAIN_PER_CLASS, 3, 64, 64) and base.train_x.dtype == np.uint8
    assert base.test_x.shape == (10 * TEST_PER_CLASS, 3, 64, 64)
    for x, y, split in ((base.train_x, base.train_y, "training"), (base.test_x, base.test_y, "testing")):
        in_order = sorted(names[split])
        assert y.dtype == np.int64 and y.tolist() == [int(n.split("_")[0]) for n in in_order]
        for image, name in zip(x, in_order):
            label, image_id = (int(part) for part in Path(name).stem.split("_"))
            wanted = np.array(colour_of(label, image_id % 1000), dtype=np.int16).reshape(3, 1, 1)
            assert np.abs(image.astype(np.int16) - wanted).max() <= 3, name
    assert sorted(names["training"])[:3] == ["0_10.jpg", "0_100.jpg", "0_2.jpg"]  # plain name order
    assert (base.mean, base.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert base.clean_labels_known is False
    assert load_base("animal10n", data_root=str(root)) is base  # decoded once per process


def test_data_root_may_be_the_dataset_folder_itself(release, no_data_dirs):
    root, _ = release
    direct = load_base("animal10n", data_root=str(root / "animal10n"))
    via_parent = load_base("animal10n", data_root=str(root))
    assert np.array_equal(direct.train_x, via_parent.train_x) and np.array_equal(direct.test_y, via_parent.test_y)


def test_catalog_entry():
    info = DATASETS.get("animal10n")
    assert (info.num_classes, info.in_channels, info.image_size) == (10, 3, 64)
    assert info.augment.pad == 0 and info.augment.flip  # flip only, no crop
    assert info.class_names == CLASS_NAMES and CLASS_NAMES[9] == "guinea pig"


def test_missing_folder_names_the_layout_and_the_fix(no_data_dirs, tmp_path):
    (no_data_dirs / "animal10n" / "training").mkdir(parents=True)  # testing/ missing: not a release
    with pytest.raises(UsageError) as err:
        load_base("animal10n", data_root=str(no_data_dirs))
    message = str(err.value)
    assert "\n" not in message
    assert "animal10n/training/" in message and "animal10n/testing/" in message and "--data-root" in message
    assert str(no_data_dirs / "animal10n") in message


@pytest.mark.parametrize("bad", ["cat_1.jpg", "10_5.jpg", "3_.jpg", "7.jpg", "-1_2.jpg"])
def test_malformed_file_name_is_named(tmp_path, no_data_dirs, bad):
    write_release(tmp_path / "animal10n")
    write_jpeg(tmp_path / "animal10n" / "testing" / bad, (0, 0, 0))
    with pytest.raises(UsageError, match="malformed file name") as err:
        load_base("animal10n", data_root=str(tmp_path))
    assert bad in str(err.value) and "\n" not in str(err.value)


def test_label_of():
    assert label_of(Path("3_abc.jpg")) == 3 and label_of(Path("0_1_2.jpg")) == 0
    with pytest.raises(UsageError, match="x/12_1.jpg"):
        label_of(Path("x/12_1.jpg"))


def test_image_of_the_wrong_size_is_named(tmp_path, no_data_dirs):
    write_release(tmp_path / "animal10n")
    small = torch.zeros(3, 32, 32, dtype=torch.uint8)
    (tmp_path / "animal10n" / "testing" / "4_77.jpg").write_bytes(encode_jpeg(small).numpy().tobytes())
    with pytest.raises(UsageError, match="4_77.jpg' is 32x32, expected 64x64"):
        load_base("animal10n", data_root=str(tmp_path))


def test_bundle_says_clean_labels_are_unknown(release, no_data_dirs):
    root, _ = release
    bundle = build_data(DataSpec("animal10n", meta_per_class=0), data_root=str(root))
    assert bundle.clean_labels_known is False and bundle.augment.pad == 0
    info = describe(bundle)
    assert info["noise_rate"].startswith("unknown") and info["clean_counts"].startswith("unknown")
    assert "noise_rate_realized" not in info and "transition_matrix" not in info
    assert info["noisy_counts"] == [TRAIN_PER_CLASS] * 10 and info["class_names"] == list(CLASS_NAMES)
    # synthetic noise on top is measured against the released labels, the total rate stays unknown
    noisy = describe(build_data(DataSpec("animal10n", noise="sym", noise_rate=0.5, meta_per_class=0),
                                data_root=str(root)))
    assert noisy["noise_rate"].startswith("unknown") and 0 < noisy["added_noise_rate_realized"] < 1
    clean = describe(build_data(DataSpec("digits", meta_per_class=0)))
    assert "clean_labels_known" not in clean and "class_names" not in clean  # other datasets unchanged


def test_label_accuracy_is_nan_without_clean_labels(release, no_data_dirs):
    root, _ = release
    bundle = build_data(DataSpec("animal10n", meta_per_class=0), data_root=str(root))
    index = torch.arange(len(bundle.train_y))
    unknown = Diagnostics(bundle.train_true_y, bundle.clean_labels_known)
    assert math.isnan(unknown.label_accuracy(index, bundle.train_y))  # never 100 against the noisy labels
    assert Diagnostics(bundle.train_true_y).label_accuracy(index, bundle.train_y) == 100.0


def test_engine_hands_methods_diagnostics_without_clean_labels(release, no_data_dirs):
    from bench.grid.presets import DEFAULT_RECIPES, make_run
    from bench.train.engine import build_method

    root, _ = release
    bundle = build_data(DataSpec("animal10n", meta_per_class=0), data_root=str(root))
    recipe = DEFAULT_RECIPES.get("animal10n")
    assert (recipe.backbone, recipe.epochs, recipe.batch_size, recipe.optim.lr) == ("vgg19_bn", 100, 128, 0.02)
    cfg = make_run(bundle.spec, "ce", recipe, seed=0, epochs=1)
    method = build_method(cfg, bundle, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert method.ctx.diagnostics.clean_labels_known is False


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, *argv)
    return code, out + err


def test_cli_data_describe(release, no_data_dirs, capsys):
    root, _ = release
    code, out = _cli(capsys, "data", "describe", "--dataset", "animal10n", "--data-root", str(root),
                     "--meta-per-class", "0")
    assert code == 0, out
    assert "noise_rate: unknown" in out and "train_size: 40" in out and "test_size: 20" in out
    assert "guinea pig" in out and "transition_matrix" not in out
    code, out = _cli(capsys, "data", "describe", "--dataset", "animal10n", "--data-root", str(root), "--json",
                     "--meta-per-class", "0")
    assert code == 0 and json.loads(out)["clean_labels_known"] is False


def test_cli_missing_data_is_one_line_exit_2(no_data_dirs, capsys):
    code, out = _cli(capsys, "data", "describe", "--dataset", "animal10n", "--data-root", str(no_data_dirs))
    assert code == 2 and out.strip().count("\n") == 0 and "animal10n/training/" in out


def test_cli_run_one_ce_and_dynamic_loss(release, no_data_dirs, tmp_path, capsys):
    root, _ = release
    out_dir = tmp_path / "one"
    common = ("--dataset", "animal10n", "--data-root", str(root), "--backbone", "mlp", "--meta-per-class", "0",
              "--batch-size", "16", "--device", "cpu", "--out", str(out_dir))
    code, out = _cli(capsys, "run", "one", "--method", "ce", "--epochs", "1", *common)
    assert code == 0, out
    code, out = _cli(capsys, "run", "one", "--method", "dynamic_loss", "--epochs", "2", "--short-run", *common)
    assert code == 0, out
    runs = pd.read_csv(out_dir / "runs.csv")
    assert runs.status.tolist() == ["done", "done"] and set(runs.dataset) == {"animal10n"}
    epochs = pd.read_csv(out_dir / "epochs.csv")
    scored = epochs[epochs.run_id == runs.run_id[1]]["lc_label_acc"]
    assert len(scored) and scored.isna().all()  # Dynamic Loss's corrected-label accuracy: unknown


def test_fixture_copy_is_independent(release, tmp_path, no_data_dirs):
    """A second copy of the same files decodes to the same arrays (the cache is keyed by folder)."""
    root, _ = release
    shutil.copytree(root / "animal10n", tmp_path / "copy")
    a, b = load_base("animal10n", data_root=str(root)), load_base("animal10n", data_root=str(tmp_path / "copy"))
    assert a is not b and np.array_equal(a.train_x, b.train_x) and np.array_equal(a.train_y, b.train_y)


def test_no_trusted_meta_set_without_clean_labels():
    """A meta set carved from Animal-10N would hold noisy labels presented as clean: refused."""
    with pytest.raises(UsageError, match="no clean training labels.*--meta-per-class 0"):
        DataSpec(dataset="animal10n", meta_per_class=10).validate()
    DataSpec(dataset="animal10n", meta_per_class=0).validate()


def test_dividemix_split_recall_is_nan_without_clean_labels(release, no_data_dirs):
    from helpers import digits_run

    from bench.train.engine import build_method

    root, _ = release
    cfg = digits_run("dividemix").with_(data=DataSpec(dataset="animal10n", meta_per_class=0))
    bundle = build_data(cfg.data, data_root=str(root))
    method = build_method(cfg, bundle, torch.device("cpu"), torch.Generator().manual_seed(0))
    method.clean_prob = [torch.full((len(bundle.train_y),), 0.9)] * 2
    method.record_split_diagnostics()
    values = method.ctx.diagnostics.pop()
    assert values["labeled_a"] == len(bundle.train_y)
    assert math.isnan(values["split_precision_a"]) and math.isnan(values["split_recall_a"])


def test_a_released_training_set_is_kept_whole_at_rho_1(tmp_path, no_data_dirs):
    """Uneven real-world classes are not cut to the smallest one's size at ρ = 1 (they still are
    for the synthetic protocols, and at ρ > 1 the profile starts from the smallest class)."""
    root = tmp_path / "uneven"
    write_release(root / "animal10n")
    for extra in (500, 501):  # class 0 gets two more images than the others
        write_jpeg(root / "animal10n" / "training" / f"0_{extra}.jpg", colour_of(0, extra % 7))
    bundle = build_data(DataSpec(dataset="animal10n", meta_per_class=0), data_root=str(root))
    assert len(bundle.train_y) == 10 * TRAIN_PER_CLASS + 2
    assert bundle.noisy_counts[0] == TRAIN_PER_CLASS + 2 and set(bundle.noisy_counts[1:]) == {TRAIN_PER_CLASS}
    lt = build_data(DataSpec(dataset="animal10n", imbalance=2, meta_per_class=0), data_root=str(root))
    assert lt.noisy_counts[0] == TRAIN_PER_CLASS  # n_max = the smallest class, as everywhere
    assert DATASETS.get("animal10n").keep_whole_at_rho_1 and not DATASETS.get("cifar10").keep_whole_at_rho_1
