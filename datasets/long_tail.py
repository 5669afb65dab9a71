"""Exponential long-tail profile (protocols.md §A.1), as every official implementation computes it."""
from __future__ import annotations


def long_tail_counts(n_max: int, num_classes: int, imbalance: float) -> list[int]:
    """n_i = int(n_max * imbalance**(-i/(C-1))) for i = 0..C-1 (class 0 is the head; truncation).

    With one class or imbalance 1 every class keeps n_max.
    """
    if num_classes == 1 or imbalance == 1:
        return [int(n_max)] * num_classes
    return [int(n_max * imbalance ** (-i / (num_classes - 1))) for i in range(num_classes)]
