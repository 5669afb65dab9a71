"""A tiny fake CIFAR-10 / CIFAR-100 in torchvision's real pickle format, for the data-package tests."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

FAKE_TRAIN_PER_CLASS = 20
FAKE_TEST_PER_CLASS = 3


def fake_superclass() -> np.ndarray:
    """A fine->coarse table for 100 classes whose superclass members are not contiguous ids."""
    return (np.arange(100) * 7) % 20


def _labels(num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(num_classes), per_class))


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_fake_cifar(root: Path, seed: int = 0) -> None:
    """Write CIFAR-10 and CIFAR-100 in torchvision's pickle layout with few images per class."""
    rng = np.random.default_rng(seed)
    c10 = root / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    train_y = _labels(10, FAKE_TRAIN_PER_CLASS, rng)
    train_x = rng.integers(0, 256, (len(train_y), 3072), dtype=np.uint8)
    for i, part in enumerate(np.array_split(np.arange(len(train_y)), 5), start=1):
        _dump(c10 / f"data_batch_{i}", {b"data": train_x[part], b"labels": train_y[part].tolist()})
    test_y = _labels(10, FAKE_TEST_PER_CLASS, rng)
    _dump(c10 / "test_batch", {b"data": rng.integers(0, 256, (len(test_y), 3072), dtype=np.uint8),
                               b"labels": test_y.tolist()})

    c100 = root / "cifar-100-python"
    c100.mkdir(parents=True)
    coarse_of = fake_superclass()
    for name, per_class in (("train", FAKE_TRAIN_PER_CLASS), ("test", FAKE_TEST_PER_CLASS)):
        fine = _labels(100, per_class, rng)
        _dump(c100 / name, {
            b"data": rng.integers(0, 256, (len(fine), 3072), dtype=np.uint8),
            b"fine_labels": fine.tolist(),
            b"coarse_labels": coarse_of[fine].tolist(),
        })


# CIFAR-N keys (spec realworld_data.md §1.1) and the fraction of labels the fake files corrupt
FAKE_C10N_RATES = {"aggre_label": 0.1, "random_label1": 0.2, "random_label2": 0.25, "random_label3": 0.3,
                   "worse_label": 0.4}
FAKE_C100N_RATE = 0.4


def fake_train_labels(root: Path, dataset: str) -> np.ndarray:
    """The training labels of the fake CIFAR under `root`, concatenated in file order."""
    if dataset == "cifar10":
        batches = [root / "cifar-10-batches-py" / f"data_batch_{i}" for i in range(1, 6)]
        key = b"labels"
    else:
        batches, key = [root / "cifar-100-python" / "train"], b"fine_labels"
    labels = []
    for path in batches:
        with open(path, "rb") as f:
            labels.extend(pickle.load(f, encoding="bytes")[key])
    return np.asarray(labels, dtype=np.int64)


def _corrupt(clean: np.ndarray, rate: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of `clean` with exactly round(rate·N) labels moved to another class."""
    noisy = clean.copy()
    chosen = rng.choice(len(clean), size=round(rate * len(clean)), replace=False)
    noisy[chosen] = (clean[chosen] + rng.integers(1, num_classes, len(chosen))) % num_classes
    return noisy


def write_fake_cifar_n(cifar_root: Path, folder: Path | None = None, seed: int = 0) -> dict[str, dict]:
    """Write CIFAR-10_human.pt / CIFAR-100_human.pt (torch.save of the real keys) into `folder`.

    clean_label = the fake CIFAR train labels under `cifar_root`; returns the dicts written, by dataset.
    """
    import torch

    folder = folder or cifar_root
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    clean10 = fake_train_labels(cifar_root, "cifar10")
    c10 = {"clean_label": clean10, **{k: _corrupt(clean10, r, 10, rng) for k, r in FAKE_C10N_RATES.items()}}
    clean100 = fake_train_labels(cifar_root, "cifar100")
    noisy100 = _corrupt(clean100, FAKE_C100N_RATE, 100, rng)
    coarse = fake_superclass()
    c100 = {"clean_label": clean100, "noisy_label": noisy100,
            "clean_coarse_label": coarse[clean100].tolist(), "noisy_coarse_label": coarse[noisy100].tolist()}
    torch.save(c10, folder / "CIFAR-10_human.pt")
    torch.save(c100, folder / "CIFAR-100_human.pt")
    return {"cifar10": c10, "cifar100": c100}
