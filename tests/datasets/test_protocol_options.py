"""DataSpec pad_mode / normalisation / noise_sampling: the constants, the crop padding and exact-count noise."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from noisytail_datasets import AugmentSpec, BatchTransform, DataSpec, build_data, load_base

# as the official codes write them, on the 0..255 scale (methods.md §4.2, §5.2, §7.2, §10.4)
EXPECTED_255 = {
    ("cifar10", "dataset"): ((0.4914 * 255, 0.4822 * 255, 0.4465 * 255), (0.2023 * 255, 0.1994 * 255, 0.2010 * 255)),
    ("cifar100", "dataset"): ((0.507 * 255, 0.487 * 255, 0.441 * 255), (0.267 * 255, 0.256 * 255, 0.276 * 255)),
    ("cifar10", "mwnet"): ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    ("cifar100", "mwnet"): ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    ("cifar10", "mmcls"): ((125.307, 122.961, 113.8575), (51.5865, 50.847, 51.255)),
    ("cifar100", "mmcls"): ((129.304, 124.070, 112.434), (68.170, 65.392, 70.418)),
}


def _bundle(root, dataset="cifar10", **kw):
    return build_data(DataSpec(dataset, meta_per_class=2, **kw), data_root=str(root))


@pytest.mark.parametrize("dataset,normalisation", sorted(EXPECTED_255))
def test_cifar_normalisation_constants(fake_cifar_root, no_data_dirs, dataset, normalisation):
    bundle = _bundle(fake_cifar_root, dataset, normalisation=normalisation)
    mean, std = EXPECTED_255[dataset, normalisation]
    assert bundle.mean == pytest.approx([m / 255 for m in mean], rel=1e-12)
    assert bundle.std == pytest.approx([s / 255 for s in std], rel=1e-12)
    # what the network sees equals (x - mean) / std computed on the 0..255 scale, as mmcls does
    x = bundle.test_x[:4]
    seen = BatchTransform(bundle.mean, bundle.std, bundle.augment)(x, train=False)
    by_hand = (x.double() - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(seen.double(), by_hand, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_cifar_crop_flip_settings(fake_cifar_root, no_data_dirs, dataset, pad_mode):
    bundle = _bundle(fake_cifar_root, dataset, pad_mode=pad_mode)
    assert bundle.augment == AugmentSpec(pad=4, flip=True, pad_mode=pad_mode)


def test_defaults_keep_the_dataset_constants(fake_cifar_root, no_data_dirs):
    bundle = _bundle(fake_cifar_root)
    base = load_base("cifar10", data_root=str(fake_cifar_root))
    assert bundle.mean == tuple(base.mean) and bundle.std == tuple(base.std)
    assert bundle.augment == AugmentSpec(pad=4, flip=True)


def _denormalised_crops(bundle, n, generator_seed):
    tf = BatchTransform((0.0,) * 3, (1 / 255,) * 3, bundle.augment)  # output = the uint8 pixel values
    return tf(bundle.train_x[:n], train=True, generator=torch.Generator().manual_seed(generator_seed))


def test_reflect_pad_mode_reaches_the_transform(fake_cifar_root, no_data_dirs):
    reflect = _bundle(fake_cifar_root, pad_mode="reflect")
    out = _denormalised_crops(reflect, 12, 0)
    pad, used_border = 4, False
    for i in range(len(out)):
        # independent reference: numpy's reflect padding (edge pixel not repeated), every offset and flip
        padded = np.pad(reflect.train_x[i].numpy(), ((0, 0), (pad, pad), (pad, pad)), mode="reflect").astype(float)
        got = out[i].double().numpy()
        hits = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                for crop in [padded[:, dy:dy + 32, dx:dx + 32]] if np.allclose(got, crop, atol=1e-3)
                or np.allclose(got, crop[:, :, ::-1], atol=1e-3)]
        assert hits, f"sample {i} is not a crop of its reflect-padded image"
        used_border |= hits[0] != (pad, pad)
    assert used_border  # some crops really reach into the padding


def test_reflect_has_no_black_border_and_constant_does(fake_cifar_root, no_data_dirs):
    white = torch.full((32, 3, 32, 32), 255, dtype=torch.uint8)
    for pad_mode, zeros_expected in (("reflect", False), ("constant", True)):
        bundle = dataclasses.replace(_bundle(fake_cifar_root, pad_mode=pad_mode), train_x=white)
        out = _denormalised_crops(bundle, 32, 3)
        assert bool((out.abs() < 1e-3).any()) == zeros_expected, pad_mode


# --- exact-count noise through build_data (DivideMix, methods.md §4.3) -------------------------------

@pytest.mark.parametrize("order", ["lt-noise", "meta-noise-lt"])
def test_exact_flip_changes_exactly_int_r_n_labels(order):
    bundle = build_data(DataSpec("digits", imbalance=3, noise="flip", noise_rate=0.37, order=order,
                                 meta_per_class=5, noise_sampling="exact"))
    changed = (bundle.train_y != bundle.train_true_y).sum().item()
    if order == "lt-noise":  # noise on the training list itself: exactly int(r*N) of its N labels
        assert changed == int(0.37 * len(bundle.train_y))
    else:  # noise on the balanced rest (all but the meta set), then long-tail subsampling keeps a part of it
        rest = len(load_base("digits").train_y) - 10 * 5
        assert 0 < changed <= int(0.37 * rest)


def test_exact_sym_flip_count_is_below_the_chosen_count():
    bundle = build_data(DataSpec("digits", noise="sym", noise_rate=0.6, noise_sampling="exact", meta_per_class=5))
    n, changed = len(bundle.train_y), (bundle.train_y != bundle.train_true_y).sum().item()
    assert changed < int(0.6 * n)
    assert abs(changed - 0.6 * n * 9 / 10) < 4 * np.sqrt(int(0.6 * n) * 0.09)


def test_exact_labels_depend_only_on_protocol_and_data_seed():
    spec = DataSpec("digits", imbalance=2, noise="sym", noise_rate=0.5, meta_per_class=5, noise_sampling="exact")
    np.random.seed(0)
    torch.manual_seed(0)
    a = build_data(spec)
    np.random.seed(1)
    torch.manual_seed(1)
    b = build_data(spec)
    assert torch.equal(a.train_y, b.train_y) and torch.equal(a.train_source_index, b.train_source_index)
    other_seed = build_data(dataclasses.replace(spec, data_seed=1))
    assert not torch.equal(a.train_y[:200], other_seed.train_y[:200])
    independent = build_data(dataclasses.replace(spec, noise_sampling="independent"))
    assert torch.equal(a.train_source_index, independent.train_source_index)  # same images, only noise differs
    assert not torch.equal(a.train_y, independent.train_y)
