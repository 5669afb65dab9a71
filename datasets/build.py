"""`build_data`: turn a `DataSpec` into a `DataBundle` (long-tail subset, meta set, label noise).

Randomness: every stage draws from its own generator np.random.default_rng([data_seed, stage]),
so the bundle depends only on the spec (never on the method, the run seed or call order).
Within a stage, one permutation per class is drawn, classes in order 0..C-1.

Order "lt-noise" (Dynamic Loss / ROLT §C.1, FSR §C.3):
  1. per class, permute the base training images (stage LT); n_max = the smallest base class size
     (or `max_per_class`, a cap for cheaper runs, when smaller);
     class c keeps the first n_c = long_tail_counts(n_max, C, rho)[c] images (at rho = 1, a dataset that
     keeps its release whole (`keep_whole_at_rho_1`: the real-world training sets) keeps every image);
  2. the meta set is the LAST meta_per_class images of each class's permutation, i.e. images the
     long-tail subsampling left out. When a class has fewer than meta_per_class left-out images
     (the head class always, every class when rho = 1) the deficit comes off the end of that
     class's long-tail list, identically for every method; the number of such images is
     `DataBundle.meta_from_train`;
  3. noise (stage NOISE) is applied to the training labels only; lt-prior uses N_j = the clean
     class counts of this long-tailed training set.
Order "meta-noise-lt" (GDW mixed setting §C.2):
  1. per class, permute the base training images (stage META); the first meta_per_class form the meta set;
  2. noise (stage NOISE) on the whole remaining, balanced set;
  3. long-tail subsampling on the TRUE labels (stage LT), n_max = the smallest remaining class size.
Meta labels are always clean, and the test set is the base test set unchanged. A dataset that releases a
clean set apart from its training images (`BaseData.meta_pool`: Clothing1M's clean val, ImageNet-LT's val)
draws the meta set from that set instead (stage META, the first meta_per_class of each class's permutation),
and no training image is held out. Images on disk (`ImageFiles`) are indexed like arrays and stay on disk.
Human noise (CIFAR-N, `cifar_n`): the same stages on the clean labels (so the same images as with
noise "none"), and the noise stage gives each kept training image its released human label (no draw).
Validation split (`val_fraction` f > 0, for model selection without the test set): after both orders'
stages, each class of the NOISY training labels (what a practitioner sees) gives up round(f·n_c) images,
at least 1 and never its last one, drawn by its own stage (VAL); they keep their noisy labels, leave the
training set and are used only to evaluate. Taken after the long tail and the noise, the split has the
training set's class profile and noise process, and the training images and labels that remain are the
same for every method (the other stages do not depend on f).
Noise sampling "exact" (DivideMix §4.3) relabels exactly int(r·N) of the N labels it is applied to,
chosen and relabelled with the same NOISE-stage generator. The spec's pad mode replaces the
catalog's, and its normalisation picks the bundle's mean/std.
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import torch

from bench.core.errors import UsageError

from .base import BaseData, ImageStore
from .bundle import DataBundle
from .catalog import DATASETS
from .cifar_n import human_train_labels, is_human_noise
from .images import ImageFiles
from .long_tail import long_tail_counts
from .noise import sample_exact_count_labels, sample_noisy_labels, transition_matrix
from .normalisation import normalisation_stats
from .spec import DataSpec

STAGE_LT, STAGE_META, STAGE_NOISE, STAGE_VAL = 1, 2, 3, 4


def _rng(spec: DataSpec, stage: int) -> np.random.Generator:
    return np.random.default_rng([spec.data_seed, stage])


def _class_permutations(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> list[np.ndarray]:
    """For each class, a random permutation of the positions in `labels` holding that class."""
    return [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]


def _too_few(spec: DataSpec, c: int, available: int, why: str) -> UsageError:
    fix = "a smaller --imbalance or --meta-per-class" + (" or a larger --max-per-class" if spec.max_per_class else "")
    return UsageError(f"{spec.dataset}: class {c} would have no training image ({why}; {available} available); "
                      f"use {fix}")


def _noisy(spec: DataSpec, base: BaseData, source_idx: np.ndarray, num_classes: int,
           human_y: np.ndarray | None) -> np.ndarray:
    """Noisy labels of base training images `source_idx` under the spec's noise model (N_j = their clean
    counts); human noise takes `human_y` (the released label of every base training image)."""
    if human_y is not None:
        return human_y[source_idx]
    true_y = base.train_y[source_idx]
    if spec.noise == "none":
        return true_y.copy()
    counts = np.bincount(true_y, minlength=num_classes)
    if spec.noise_sampling == "exact":
        t_full = transition_matrix(spec.noise, 1.0, num_classes, counts, spec.dataset, base.superclass)
        return sample_exact_count_labels(true_y, t_full, spec.noise_rate, _rng(spec, STAGE_NOISE))
    t = transition_matrix(spec.noise, spec.noise_rate, num_classes, counts, spec.dataset, base.superclass)
    return sample_noisy_labels(true_y, t, _rng(spec, STAGE_NOISE))


def _class_sizes_wanted(spec: DataSpec, sizes: list[int], num_classes: int) -> list[int]:
    """The long-tail profile from the smallest class (n_max = min size, or `max_per_class` when that is
    smaller); at ρ = 1 on a dataset that keeps its release whole and no cap, every class's own size."""
    cap = spec.max_per_class
    if spec.imbalance == 1 and DATASETS.get(spec.dataset).keep_whole_at_rho_1 and not cap:
        return list(sizes)
    return long_tail_counts(min(min(sizes), cap) if cap else min(sizes), num_classes, spec.imbalance)


def _lt_then_noise(spec: DataSpec, base: BaseData, num_classes: int, human_y: np.ndarray | None):
    m = spec.meta_per_class
    perms = _class_permutations(base.train_y, num_classes, _rng(spec, STAGE_LT))
    sizes = [len(p) for p in perms]
    wanted = _class_sizes_wanted(spec, sizes, num_classes)
    train_parts, meta_parts, from_train = [], [], 0
    for c, perm in enumerate(perms):
        keep = min(wanted[c], len(perm) - m)
        if keep < 1:
            raise _too_few(spec, c, len(perm), f"long-tail count {wanted[c]}, {m} meta images")
        from_train += wanted[c] - keep
        train_parts.append(perm[:keep])
        meta_parts.append(perm[len(perm) - m:])
    train_idx = np.sort(np.concatenate(train_parts))
    true_y = base.train_y[train_idx]
    noisy_y = _noisy(spec, base, train_idx, num_classes, human_y)
    return train_idx, true_y, noisy_y, np.sort(np.concatenate(meta_parts)), from_train


def _meta_noise_then_lt(spec: DataSpec, base: BaseData, num_classes: int, human_y: np.ndarray | None):
    m = spec.meta_per_class
    perms = _class_permutations(base.train_y, num_classes, _rng(spec, STAGE_META))
    for c, perm in enumerate(perms):
        if len(perm) - m < 1:
            raise _too_few(spec, c, len(perm), f"{m} meta images")
    meta_idx = np.sort(np.concatenate([p[:m] for p in perms]))
    rest_idx = np.sort(np.concatenate([p[m:] for p in perms]))
    rest_true = base.train_y[rest_idx]
    rest_noisy = _noisy(spec, base, rest_idx, num_classes, human_y)
    lt_perms = _class_permutations(rest_true, num_classes, _rng(spec, STAGE_LT))
    wanted = _class_sizes_wanted(spec, [len(p) for p in lt_perms], num_classes)
    for c, n_c in enumerate(wanted):
        if n_c < 1:
            raise _too_few(spec, c, len(lt_perms[c]), f"long-tail count {n_c}")
    keep = np.sort(np.concatenate([p[:n_c] for p, n_c in zip(lt_perms, wanted)]))
    return rest_idx[keep], rest_true[keep], rest_noisy[keep], meta_idx, 0


def _meta_from_pool(spec: DataSpec, pool_y: np.ndarray, num_classes: int) -> np.ndarray:
    """Positions in a released clean set (`BaseData.meta_pool`) of the meta set: the first
    meta_per_class of each class's permutation (stage META), classes in order."""
    m = spec.meta_per_class
    perms = _class_permutations(pool_y, num_classes, _rng(spec, STAGE_META))
    for c, perm in enumerate(perms):
        if len(perm) < m:
            raise UsageError(f"{spec.dataset}: class {c} has {len(perm)} images in the clean set the meta set is "
                             f"drawn from, fewer than --meta-per-class {m}; use a smaller --meta-per-class")
    return np.sort(np.concatenate([p[:m] for p in perms])) if perms else np.empty(0, dtype=np.int64)


def validation_split(noisy_y: np.ndarray, num_classes: int, fraction: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Positions in `noisy_y` held out for validation: per noisy class (classes in order), the first
    round(fraction·n_c) of a random permutation, at least 1 and at most n_c − 1 (none when n_c < 2)."""
    if fraction <= 0:
        return np.empty(0, dtype=np.int64)
    parts = []
    for perm in _class_permutations(noisy_y, num_classes, rng):
        n = len(perm)
        # round half up on the fraction as written (0.35 · 90 = 31.5 → 32, where float arithmetic gives 31.4999…)
        take = min(n - 1, max(1, int(Fraction(str(fraction)) * n + Fraction(1, 2)))) if n >= 2 else 0
        parts.append(perm[:take])
    return np.sort(np.concatenate(parts)).astype(np.int64)


def build_data(spec: DataSpec, device: torch.device | str = "cpu", data_root: str | None = None,
               download: bool = False) -> DataBundle:
    """Validate `spec`, load its base dataset (cached) and build the run's tensors on `device`."""
    spec.validate()
    info = DATASETS.get(spec.dataset)
    base = info.load(data_root, download)
    human_y = (human_train_labels(spec.noise, base.train_y, info.num_classes, data_root)
               if is_human_noise(spec.noise) else None)
    construct = _lt_then_noise if spec.order == "lt-noise" else _meta_noise_then_lt
    pool = base.meta_pool
    carve = dataclasses.replace(spec, meta_per_class=0) if pool is not None else spec  # meta from the pool instead
    train_idx, true_y, noisy_y, meta_idx, from_train = construct(carve, base, info.num_classes, human_y)
    meta_x, meta_y = base.train_x, base.train_y
    if pool is not None:
        meta_x, meta_y = pool
        meta_idx = _meta_from_pool(spec, meta_y, info.num_classes)
    held_out = validation_split(noisy_y, info.num_classes, spec.val_fraction, _rng(spec, STAGE_VAL))
    val_idx, val_true_y, val_noisy_y = train_idx[held_out], true_y[held_out], noisy_y[held_out]
    if len(held_out):
        kept = np.setdiff1d(np.arange(len(train_idx)), held_out)
        train_idx, true_y, noisy_y = train_idx[kept], true_y[kept], noisy_y[kept]
    mean, std = normalisation_stats(spec.normalisation, spec.dataset, base)

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    def images(a: ImageStore) -> torch.Tensor | ImageFiles:
        return a.copy() if isinstance(a, ImageFiles) else tensor(a)

    return DataBundle(
        spec=spec,
        num_classes=info.num_classes,
        in_channels=info.in_channels,
        image_size=spec.image_size or info.image_size,
        train_x=images(base.train_x[train_idx]),
        train_y=tensor(noisy_y.astype(np.int64)),
        train_true_y=tensor(true_y.astype(np.int64)),
        train_source_index=tensor(train_idx.astype(np.int64)),
        meta_x=images(meta_x[meta_idx]),
        meta_y=tensor(meta_y[meta_idx].astype(np.int64)),
        test_x=images(base.test_x.copy()),  # never share memory with the cache
        test_y=tensor(base.test_y.astype(np.int64, copy=True)),
        extra_tests={name: (images(x.copy()), tensor(y.astype(np.int64, copy=True)))
                     for name, (x, y) in base.extra_tests.items()},
        stream=info.stream.at_size(spec.image_size or info.image_size) if info.stream else None,
        mean=mean,
        std=std,
        augment=dataclasses.replace(info.augment, pad_mode=spec.pad_mode),
        meta_from_train=from_train,
        meta_source_index=tensor(meta_idx.astype(np.int64)),
        val_x=images(base.train_x[val_idx]),
        val_y=tensor(val_noisy_y.astype(np.int64)),
        val_true_y=tensor(val_true_y.astype(np.int64)),
        val_source_index=tensor(val_idx.astype(np.int64)),
        clean_labels_known=base.clean_labels_known,
    )
