"""Synthetic label-noise models as class transition matrices, and vectorised sampling from them.

Every model is a row-stochastic matrix T with T[i, j] = P(noisy label j | clean label i). Sampling
"independent" redraws each training label from its row (protocols.md §B, §C.1); "exact" relabels
exactly int(r·N) randomly chosen samples from the rows of the rate-1 matrix (DivideMix, methods.md §4.3).
The registry also lists the CIFAR-N human labels (`cifar_n.HUMAN_NOISES`): they have no matrix, `build`
reads them from the released files instead.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bench.core.registry import Registry

from .cifar_n import HUMAN_NOISES, is_human_noise
from .class_maps import asym_map, pair_flip_map

# (rate, num_classes, class_counts, dataset, superclass) -> T
NoiseModel = Callable[[float, int, "np.ndarray | None", "str | None", "np.ndarray | None"], np.ndarray]
NOISE_MODELS: Registry[NoiseModel] = Registry("noise model")

# "independent": every label redrawn from its row of T(r); "exact": DivideMix's exact-count noise
NOISE_SAMPLINGS = ("independent", "exact")


@NOISE_MODELS.register("none", "no label noise (identity matrix)")
def _none(rate, num_classes, class_counts, dataset, superclass) -> np.ndarray:
    """No noise: T = I."""
    return np.eye(num_classes)


@NOISE_MODELS.register("sym", "inclusive symmetric: T = r/C*11^T + (1-r)I, as MW-Net/GDW/DL/FSR code (protocols §B.1)")
def _sym(rate, num_classes, class_counts, dataset, superclass) -> np.ndarray:
    """Inclusive uniform noise (protocols.md §B.1): with prob. r the label is redrawn from all C classes."""
    return np.full((num_classes, num_classes), rate / num_classes) + (1.0 - rate) * np.eye(num_classes)


@NOISE_MODELS.register("sym-excl", "exclusive symmetric: r/(C-1) to each other class, "
                                   "as the GDW paper text (protocols §B.1)")
def _sym_excl(rate, num_classes, class_counts, dataset, superclass) -> np.ndarray:
    """Exclusive uniform noise (protocols.md §B.1): with prob. r the label moves to one of the other C-1 classes."""
    if num_classes == 1:
        return np.eye(1)
    t = np.full((num_classes, num_classes), rate / (num_classes - 1))
    np.fill_diagonal(t, 1.0 - rate)
    return t


@NOISE_MODELS.register("asym", "asymmetric class map with prob r: CIFAR-10 semantic map (protocols §B.2), "
                               "CIFAR-100 next-in-superclass (§B.4), Fashion-MNIST confusable pairs (ours)")
def _asym(rate, num_classes, class_counts, dataset, superclass) -> np.ndarray:
    """Per-image Bernoulli(r) along a class map (protocols.md §B.2, §B.4; Fashion-MNIST map is this project's)."""
    t = np.eye(num_classes)
    for src, dst in asym_map(dataset or "", superclass).items():
        if src != dst:
            t[src, src] = 1.0 - rate
            t[src, dst] = rate
    return t


@NOISE_MODELS.register("flip", "MW-Net/GDW pair flip: r to one fixed random other class, "
                               "legacy seed-1 map (protocols §B.3)")
def _flip(rate, num_classes, class_counts, dataset, superclass) -> np.ndarray:
    """MW-Net/GDW `flip` (protocols.md §B.3): row i keeps 1-r and puts r on one class fixed by RandomState(1)."""
    t = (1.0 - rate) * np.eye(num_classes)
    if num_classes == 1:
        return np.eye(1)
    t[np.arange(num_classes), pair_flip_map(num_classes)] = rate
    return t


@NOISE_MODELS.register("lt-prior", "Dynamic Loss/ROLT: with prob r redraw from the LT class prior, "
                                   "T = (1-r)I + r*N_j/N (protocols §C.1)")
def _lt_prior(rate, num_classes, class_counts, dataset, superclass) -> np.ndarray:
    """Dynamic Loss / ROLT (protocols.md §C.1): T[i, j] = (1-λ)δ_ij + λ N_j/N with N_j the clean class counts."""
    if class_counts is None:
        raise ValueError("lt-prior noise needs the clean class counts N_j")
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.shape != (num_classes,) or counts.sum() <= 0:
        raise ValueError(f"class_counts must be {num_classes} non-negative counts with a positive sum")
    return (1.0 - rate) * np.eye(num_classes) + rate * (counts / counts.sum())[None, :]


for _human in HUMAN_NOISES.values():
    NOISE_MODELS.add(_human.name, _human, _human.description)


def synthetic_noise_names() -> list[str]:
    """The noise models that have a transition matrix and take a rate (all but "none" and human labels)."""
    return [n for n in NOISE_MODELS if n != "none" and not is_human_noise(n)]


def transition_matrix(noise: str, rate: float, num_classes: int, class_counts: Sequence[int] | None = None,
                      dataset: str | None = None, superclass: Sequence[int] | None = None) -> np.ndarray:
    """Row-stochastic C×C matrix of noise model `noise` at `rate`.

    `class_counts` (clean N_j) is needed by lt-prior, `dataset` by asym. For CIFAR-100 asym the
    fine->coarse table is `superclass`; if omitted it is read from the CIFAR-100 files found by
    the default search (data root, $BENCH_DATA, cache).
    """
    model = NOISE_MODELS.get(noise)
    if noise == "asym" and dataset == "cifar100" and superclass is None:
        from .catalog import load_base

        superclass = load_base("cifar100").superclass
    counts = None if class_counts is None else np.asarray(class_counts)
    return model(float(rate), int(num_classes), counts, dataset, superclass)


def sample_noisy_labels(labels: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw each noisy label from row labels[k] of `t`, using one uniform per sample (in sample order).

    The label is the first column whose cumulative row mass exceeds u; searched per class (a loop
    over classes, not samples), so zero-mass entries can never be picked.
    """
    labels = np.asarray(labels, dtype=np.int64)
    cum = np.cumsum(t, axis=1)
    # guard against rounding: each row's mass reaches exactly 1 at its last non-zero entry
    last = t.shape[1] - 1 - np.argmax(t[:, ::-1] > 0, axis=1)
    cum[np.arange(t.shape[1])[None, :] >= last[:, None]] = 1.0
    u = rng.random(len(labels))
    noisy = labels.copy()
    for c in np.unique(labels):
        rows = labels == c
        noisy[rows] = np.searchsorted(cum[c], u[rows], side="right")
    return noisy


def sample_exact_count_labels(labels: np.ndarray, t_full: np.ndarray, rate: float,
                              rng: np.random.Generator) -> np.ndarray:
    """Relabel exactly int(rate·N) samples, chosen uniformly without replacement, from rows of `t_full`.

    `t_full` is the noise model at rate 1 (sym: uniform over all C classes, so a chosen label may
    stay; asym: the class map). As DivideMix `dataloader_cifar.py` (methods.md §4.3):
    `noise_idx = shuffled(range(N))[:int(r*N)]`.
    """
    labels = np.asarray(labels, dtype=np.int64)
    chosen = rng.choice(len(labels), size=int(rate * len(labels)), replace=False)
    noisy = labels.copy()
    noisy[chosen] = sample_noisy_labels(labels[chosen], t_full, rng)
    return noisy
