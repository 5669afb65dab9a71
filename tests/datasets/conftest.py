"""Shared fixtures for the data-package tests: hermetic data search paths and a tiny fake CIFAR on disk."""
from __future__ import annotations

from pathlib import Path

import pytest
from fake_cifar import write_fake_cifar

from noisytail_datasets import fashion_mnist, locate


@pytest.fixture
def no_data_dirs(tmp_path, monkeypatch) -> Path:
    """Point every place the loaders search ($BENCH_DATA, system dir, user cache) at empty folders."""
    empty = tmp_path / "empty"
    for sub in ("env", "system", "cache", "root"):
        (empty / sub).mkdir(parents=True)
    monkeypatch.setenv(locate.ENV_VAR, str(empty / "env"))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", empty / "system")
    monkeypatch.setattr(locate, "CACHE_DIR", empty / "cache")
    return empty / "root"


@pytest.fixture(scope="session")
def fake_cifar_root(tmp_path_factory) -> Path:
    """A data root holding fake cifar-10-batches-py/ and cifar-100-python/."""
    root = tmp_path_factory.mktemp("fake_cifar")
    write_fake_cifar(root)
    return root
