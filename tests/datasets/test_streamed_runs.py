"""A short run of every registered method on each streamed dataset's fixture, written in the real on-disk
format: through the streaming data path (files decoded and augmented per image, normalised on the
device), with the dataset's extra measures (top-5, the ImageNet test set, many/medium/few) recorded."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_clothing1m import write_release as write_clothing1m
from test_webvision import write_release as write_webvision
from torchvision.io import encode_jpeg

from bench.core.errors import UsageError
from bench.grid.presets import resolve_hparams
from bench.train.config import RunConfig
from bench.train.engine import TrialOptions, build_method, run_trial
from methods import METHODS
from noisytail_datasets import DataSpec, build_data

pytestmark = [pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning"),
              pytest.mark.slow]

PLACES_CLASSES = 365


def write_lt_lists(root: Path, release: str = "Places_LT", classes: int = PLACES_CLASSES) -> Path:
    """OLTR-style lists for every class (train 2, val 1, test 1; class 0 has 9 training images) and
    every image they name (one tiny JPEG's bytes, so writing stays fast)."""
    folder = root / release
    jpeg = encode_jpeg(torch.full((3, 20, 24), 90, dtype=torch.uint8)).numpy().tobytes()
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for c in range(classes):
        name = f"category_{c:03d}"
        for split, source, count in (("train", "train", 9 if c == 0 else 2), ("val", "train", 1),
                                     ("test", "val", 1)):
            for k in range(count):
                rel = f"{source}/{name}/{split}{k:08d}.jpg"
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_bytes(jpeg)
                lines[split].append(f"{rel} {c}")
    for split, rows in lines.items():
        (folder / f"{release}_{split}.txt").write_text("\n".join(rows) + "\n")
    return root


#: dataset -> (fixture writer into <root>, meta images per class)
FIXTURES = {
    "clothing1m": (lambda root: write_clothing1m(root / "clothing1m"), 1),
    "mini-webvision": (lambda root: write_webvision(root / "webvision"), 0),
    "places-lt": (write_lt_lists, 1),
    "imagenet-lt": (lambda root: write_lt_lists(root, "ImageNet_LT", 1000), 1),
}
#: ImageNet-LT shares Places-LT's loader and evaluation: its 1,000 classes get two methods, not all
ONLY = {"imagenet-lt": ("ce", "dynamic_loss")}

#: overrides that let a method run on a couple of images per class (over its short-run ones)
TINY = {
    "dynamic_loss": {"primary_ratio": 1.0, "meta_ratio": 1.0},
    "dynamic_loss_la": {"primary_ratio": 1.0, "meta_ratio": 1.0},
    "dynamic_loss_bs": {"primary_ratio": 1.0, "meta_ratio": 1.0},
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name, (write, _) in FIXTURES.items():
        root = tmp_path_factory.mktemp(name)
        write(root)
        out[name] = root
    return out


def run_config(dataset: str, method: str) -> RunConfig:
    cls = METHODS.get(method)
    hparams = {**cls.short_run, **{k: v for k, v in TINY.get(method, {}).items() if k in cls.defaults}}
    data = DataSpec(dataset, meta_per_class=FIXTURES[dataset][1], image_size=16)
    return RunConfig(data=data, method=method, backbone="small_cnn", epochs=2, batch_size=16, seed=0,
                     hparams=resolve_hparams(method, hparams, dataset=dataset))


@pytest.mark.parametrize("dataset, method", [(d, m) for d in FIXTURES for m in ONLY.get(d, list(METHODS))])
def test_every_method_trains_on_a_streamed_fixture(dataset, method, roots, no_data_dirs):
    cfg = run_config(dataset, method)
    opts = TrialOptions(data_root=str(roots[dataset]), data_workers=0, eval_batch_size=64)
    if METHODS.get(method).uses_meta_set and cfg.data.meta_per_class == 0:
        with pytest.raises(UsageError, match="trusted meta set"):
            build_method(cfg, build_data(cfg.data, data_root=opts.data_root), torch.device("cpu"),
                         torch.Generator())
        return
    record = run_trial(cfg, opts)
    assert record["status"] == "done", record["error"]
    assert record["data_path"] == "streamed (0 decoding workers)"
    last = record["epochs"][-1]
    assert len(record["epochs"]) == 2 and math.isfinite(last["train_loss"])
    assert 0 <= last["test_acc"] <= 100
    if dataset == "mini-webvision":
        assert {"test_top5", "imagenet_acc", "imagenet_top5"} <= set(last)
        assert last["test_top5"] >= last["test_acc"] and last["imagenet_top5"] >= last["imagenet_acc"]
    if dataset in ("places-lt", "imagenet-lt"):
        assert {"many_acc", "medium_acc", "few_acc"} <= set(last)


def test_the_streamed_bundle_keeps_files_and_the_crop_size(roots, no_data_dirs):
    bundle = build_data(DataSpec("places-lt", meta_per_class=1, image_size=16), data_root=str(roots["places-lt"]))
    assert bundle.streamed and bundle.image_size == 16 and (bundle.stream.size, bundle.stream.resize) == (16, 18)
    assert len(bundle.train_y) == 9 + 2 * (PLACES_CLASSES - 1) and len(bundle.meta_y) == PLACES_CLASSES
