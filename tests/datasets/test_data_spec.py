"""DataSpec.validate: every bad field is a UsageError that says what to do."""
from __future__ import annotations

import pytest

from bench.core.errors import UsageError
from noisytail_datasets import DATASETS, ORDERS, DataSpec, build_data


def test_registries_and_orders():
    assert DATASETS.names() == [
        "digits", "fashion-mnist", "cifar10", "cifar100", "animal10n",
        *(f"red-mini-imagenet-{p}" for p in (0, 5, 10, 15, 20, 30, 40, 50, 60, 80)),
        "mini-webvision", "clothing1m", "imagenet-lt", "places-lt", "random-cifar"]
    streamed = [n for n in DATASETS if DATASETS.get(n).stream is not None]
    assert streamed == ["mini-webvision", "clothing1m", "imagenet-lt", "places-lt"]
    assert all(DATASETS.get(n).image_size == DATASETS.get(n).stream.size for n in streamed)
    assert all(DATASETS.describe(n) for n in DATASETS)
    assert ORDERS == ("lt-noise", "meta-noise-lt")


@pytest.mark.parametrize("spec", [
    DataSpec("digits"),
    DataSpec("cifar10", imbalance=100, noise="lt-prior", noise_rate=0.4),
    DataSpec("cifar100", noise="asym", noise_rate=0.2, order="meta-noise-lt", meta_per_class=0),
    DataSpec("fashion-mnist", noise="asym", noise_rate=0.0),
    DataSpec("fashion-mnist", pad_mode="reflect"),
    DataSpec("cifar10", pad_mode="reflect", normalisation="mwnet", noise="sym", noise_rate=0.5, noise_sampling="exact"),
    DataSpec("cifar100", normalisation="mmcls", noise="asym", noise_rate=0.0, noise_sampling="exact"),
])
def test_valid_specs_pass(spec):
    spec.validate()


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(imbalance=0.5), "imbalance"),
    (dict(imbalance=float("inf")), "imbalance"),
    (dict(noise="sym", noise_rate=1.0), "[0, 1)"),
    (dict(noise="sym", noise_rate=-0.1), "[0, 1)"),
    (dict(noise="none", noise_rate=0.2), "noise 'none'"),
    (dict(meta_per_class=-1), "meta_per_class"),
    (dict(data_seed=-3), "data_seed"),
    (dict(noise="asym", noise_rate=0.2),
     "asymmetric noise has no class map for dataset 'digits'; use --noise sym, sym-excl, flip or lt-prior"),
    (dict(pad_mode="reflect"),
     "pad mode 'reflect': dataset 'digits' is trained without padding; use --pad-mode constant"),
    (dict(pad_mode="edge"), "unknown pad mode 'edge'; choose one of: constant, reflect"),
    (dict(normalisation="mwnet"),
     "normalisation 'mwnet' is not defined for dataset 'digits'; use --normalisation dataset"),
    (dict(normalisation="mean-std"), "unknown normalisation 'mean-std'; choose one of: dataset, mmcls, mwnet"),
    (dict(noise_sampling="exact"), "noise sampling 'exact' needs a noise model"),
    (dict(noise_sampling="exactly", noise="sym", noise_rate=0.2), "did you mean 'exact'"),
])
def test_invalid_fields(kwargs, fragment):
    with pytest.raises(UsageError) as err:
        DataSpec("digits", **kwargs).validate()
    assert fragment in str(err.value)


@pytest.mark.parametrize("kwargs,suggestion", [
    (dict(dataset="cifar-10"), "did you mean 'cifar10'"),
    (dict(dataset="fashion_mnist"), "did you mean 'fashion-mnist'"),
    (dict(dataset="digits", noise="symm"), "did you mean 'sym'"),
    (dict(dataset="digits", order="lt_noise"), "did you mean 'lt-noise'"),
])
def test_unknown_names_suggest(kwargs, suggestion):
    with pytest.raises(UsageError, match=suggestion):
        DataSpec(**kwargs).validate()


@pytest.mark.parametrize("dataset", ["fashion-mnist", "random-cifar"])
def test_cifar_normalisations_are_refused_elsewhere(dataset):
    for name in ("mwnet", "mmcls"):
        with pytest.raises(UsageError, match=f"normalisation '{name}' is not defined for dataset '{dataset}'; "
                                             "use --normalisation dataset$"):
            DataSpec(dataset, normalisation=name).validate()


def test_build_validates_first():
    with pytest.raises(UsageError, match="did you mean 'cifar10'"):
        build_data(DataSpec("cifar-10"))


def test_spec_is_frozen_and_hashable():
    spec = DataSpec("digits")
    assert hash(spec) == hash(DataSpec("digits"))
    with pytest.raises(Exception):
        spec.imbalance = 2.0  # type: ignore[misc]


def test_random_cifar_is_cifar_shaped_and_fixed():
    from noisytail_datasets import load_base

    base = load_base("random-cifar")
    assert base.train_x.shape == (50_000, 3, 32, 32) and base.test_x.shape == (10_000, 3, 32, 32)
    assert base.train_x.dtype.name == "uint8" and set(base.train_y.tolist()) == set(range(10))
    assert int(base.train_x[0, 0, 0, 0]) == int(load_base("random-cifar").train_x[0, 0, 0, 0])


@pytest.mark.parametrize("spec, message", [
    (DataSpec("cifar10", image_size=16), "cannot be resized"),
    (DataSpec("places-lt", image_size=-1), "integer >= 0"),
    (DataSpec("places-lt", image_size=8), "too small"),
])
def test_image_size_only_for_streamed_datasets(spec, message):
    with pytest.raises(UsageError, match=message):
        spec.validate()
    DataSpec("places-lt", image_size=64).validate()
