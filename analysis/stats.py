"""Significance tests over a results store (see ../shared/specs/analysis_stats.md).

Across cells the unit of replication is the cell: one seed-mean per (method, cell). Within a
cell it is the seed, paired across methods by (data seed, train seed).
"""
from __future__ import annotations

import math

import pandas as pd
import scikit_posthocs as sp
from scipy import stats as st


def complete_blocks(matrix: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Keep the cells (rows) where every method has a value; return them and the dropped cells."""
    full = matrix.dropna(axis=0, how="any")
    return full, [cell for cell in matrix.index if cell not in full.index]


def average_ranks(matrix: pd.DataFrame) -> pd.Series:
    """Mean rank per method over cells (rank 1 = highest accuracy; ties share the average rank)."""
    return matrix.rank(axis=1, ascending=False, method="average").mean(axis=0)


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's CD = q_α·√(k(k+1)/(6N)), q_α the studentized range quantile over √2 (Demšar 2006)."""
    q_alpha = st.studentized_range.ppf(1 - alpha, k, math.inf) / math.sqrt(2)
    return float(q_alpha * math.sqrt(k * (k + 1) / (6 * n)))


def nemenyi(matrix: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.Series, pd.DataFrame, float]:
    """(average ranks, Nemenyi p-value matrix, critical difference) on complete cells x methods."""
    full, _ = complete_blocks(matrix)
    pvalues = sp.posthoc_nemenyi_friedman(full.reset_index(drop=True))
    return average_ranks(full), pvalues, critical_difference(full.shape[1], full.shape[0], alpha)
