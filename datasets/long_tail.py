"""Exponential long-tail profile (protocols.md §A.1), as every official implementation computes it, and the
many / medium / few-shot class groups of the long-tail literature (specs/realworld_data.md §5.2)."""
from __future__ import annotations

import numpy as np

from bench.core.errors import unknown


def long_tail_counts(n_max: int, num_classes: int, imbalance: float) -> list[int]:
    """n_i = int(n_max * imbalance**(-i/(C-1))) for i = 0..C-1 (class 0 is the head; truncation).

    With one class or imbalance 1 every class keeps n_max.
    """
    if num_classes == 1 or imbalance == 1:
        return [int(n_max)] * num_classes
    return [int(n_max * imbalance ** (-i / (num_classes - 1))) for i in range(num_classes)]


#: how classes are split by their training-set size: "balms" (many if > 100, few if < 20; BALMS and
#: most later long-tail code) or "oltr" (many if >= 100, few if <= 20; OLTR's `shot_acc`)
SHOT_RULES = ("balms", "oltr")
#: group index -> name, as `shot_groups` numbers them
SHOT_GROUPS = ("many", "medium", "few")
MANY, MEDIUM, FEW = 0, 1, 2


def shot_groups(train_counts, rule: str = "balms") -> np.ndarray:
    """The group of each class from its number of training images: 0 many, 1 medium, 2 few (int64)."""
    if rule not in SHOT_RULES:
        raise unknown("shot rule", rule, SHOT_RULES)
    counts = np.asarray(train_counts)
    if counts.ndim != 1:
        raise ValueError(f"train_counts must be one count per class (1-D), got shape {counts.shape}")
    if rule == "balms":
        many, few = counts > 100, counts < 20
    else:
        many, few = counts >= 100, counts <= 20
    groups = np.full(counts.shape, MEDIUM, dtype=np.int64)
    groups[many] = MANY
    groups[few] = FEW
    return groups


def shot_accuracies(per_class_correct, per_class_total, groups) -> dict[str, float]:
    """{"many": %, "medium": %, "few": %}: the mean of the per-class accuracies (in %) of each group's
    classes, as OLTR's and BALMS's `shot_acc` compute it (every class weighs the same, whatever its
    number of test images). Classes without test images have no accuracy and are left out, as in
    `shot_acc`, which only visits the labels present in the test set; a group left with no class is NaN.
    """
    correct = np.asarray(per_class_correct, dtype=np.float64)
    total = np.asarray(per_class_total, dtype=np.float64)
    groups = np.asarray(groups)
    if not correct.shape == total.shape == groups.shape or correct.ndim != 1:
        raise ValueError(f"need three 1-D per-class arrays of one shape, got {correct.shape}, {total.shape}, "
                         f"{groups.shape}")
    if np.any(correct < 0) or np.any(correct > total):
        raise ValueError("per-class correct counts must lie between 0 and the class's test images")
    scored = total > 0
    accuracy = np.divide(100.0 * correct, total, out=np.zeros_like(correct), where=scored)
    result = {}
    for index, name in enumerate(SHOT_GROUPS):
        members = scored & (groups == index)
        result[name] = float(accuracy[members].mean()) if members.any() else float("nan")
    return result
