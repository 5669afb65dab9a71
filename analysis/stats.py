"""Significance tests over a results store (see ../shared/specs/analysis_stats.md §2-4).

Two questions, two units of replication:

- *Within a cell* (is method X better than the reference here?) the unit is the seed. Runs of
  one cell with the same (data seed, train seed) saw identical data, so they are paired across
  methods. Each other method is compared to the reference with a paired t-test; Holm corrects
  over the family "reference vs every other method, in one cell, for one metric".
- *Across cells* (does X rank above Y over the grid?) the unit is the cell, scored by its seed
  mean (Demšar 2006): average ranks, Friedman with the Iman-Davenport F, pairwise Wilcoxon
  signed-rank with Holm (primary, Benavoli et al. 2016) and Nemenyi with its critical difference.

The tests themselves come from scipy, statsmodels (Holm) and scikit-posthocs (Nemenyi); this
module only chooses them, feeds them and writes the report (Markdown, booktabs LaTeX, CSV).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from analysis.results import CELL_KEYS, METRIC_LABELS, Cell, Results, metric_column
from analysis.style import baseline_method, display_name
from bench.core.errors import UsageError

#: fewest seeds (pairs, or runs per side for Welch) a within-cell test needs
MIN_SEEDS = 3
#: Wilcoxon's convention for zero differences: split their ranks between the signs (Demšar 2006 §3.1.3)
ZERO_METHOD = "zsplit"
#: seed means are rounded to this many decimals before ranking, so float noise cannot break a tie
TIE_DECIMALS = 9
#: files `write_stats` may write under `<results>/stats/` (stale ones are removed first)
OUTPUT_FILES = ("stats.md", "stats.tex", "within_cells.csv", "ranks.csv", "mean_intervals.csv",
                "versus_reference.csv", "pairwise_wilcoxon.csv", "nemenyi.csv", "friedman.csv")
#: test name of a within-cell comparison whose paired differences are all equal and non-zero
CONSTANT = "constant Δ"
#: resamples and generator seed of the stratified bootstrap (fixed, so a report is reproducible)
BOOTSTRAP_RESAMPLES = 4999
BOOTSTRAP_SEED = 0
#: Cliff's δ magnitude bounds (Romano et al. 2006, as Autorank uses): |δ| below each is that label, else "large"
CLIFF_BOUNDS = ((0.147, "negligible"), (0.33, "small"), (0.474, "medium"))


# --------------------------------------------------------------------------- ranks and Nemenyi


def complete_blocks(matrix: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Keep the cells (rows) where every method has a value; return them and the dropped cells."""
    full = matrix.dropna(axis=0, how="any")
    return full, [cell for cell in matrix.index if cell not in full.index]


def average_ranks(matrix: pd.DataFrame) -> pd.Series:
    """Mean rank per method over cells (rank 1 = highest accuracy; ties share the average rank)."""
    ranks = matrix.round(TIE_DECIMALS).rank(axis=1, ascending=False, method="average")
    return ranks.mean(axis=0)


@functools.lru_cache(maxsize=64)
def _q_alpha(k: int, alpha: float) -> float:
    """Studentized range quantile over √2 (Demšar's q_α); cached, the quantile is slow to invert."""
    return float(st.studentized_range.ppf(1 - alpha, k, math.inf) / math.sqrt(2))


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's CD = q_α·√(k(k+1)/(6N)), q_α the studentized range quantile over √2 (Demšar 2006)."""
    return _q_alpha(k, alpha) * math.sqrt(k * (k + 1) / (6 * n))


def nemenyi(matrix: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.Series, pd.DataFrame, float]:
    """(average ranks, Nemenyi p-value matrix, critical difference) on complete cells x methods."""
    full, _ = complete_blocks(matrix)
    if full.shape[0] < 2 or full.shape[1] < 2:
        raise UsageError(f"Nemenyi needs ≥2 methods on ≥2 complete cells; got {full.shape[1]} methods on "
                         f"{full.shape[0]} complete cells")
    rounded = full.round(TIE_DECIMALS)
    pvalues = sp.posthoc_nemenyi_friedman(rounded.reset_index(drop=True))
    pvalues = pvalues.loc[list(full.columns), list(full.columns)]
    return average_ranks(full), pvalues, critical_difference(full.shape[1], full.shape[0], alpha)


# --------------------------------------------------------------------------- multiple testing


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm-adjusted p-values and reject flags; NaN entries (tests not run) stay out of the family."""
    raw = np.asarray(pvalues, dtype=float)
    adjusted, reject = np.full(raw.shape, np.nan), np.zeros(raw.shape, dtype=bool)
    tested = ~np.isnan(raw)
    if tested.any():
        rej, adj, _, _ = multipletests(raw[tested], alpha=alpha, method="holm")
        adjusted[tested], reject[tested] = adj, rej
    return adjusted, reject


# --------------------------------------------------------------------------- effect size and power floor


def cliffs_delta(x: Sequence[float], y: Sequence[float]) -> float:
    """Cliff's δ = P(X > Y) − P(X < Y) over all len(x)·len(y) pairs (NaN if a side is empty).

    Read off the Mann-Whitney U of x, which counts the pairs x > y plus half the ties:
    δ = 2U / (n_x n_y) − 1. Values are rounded to `TIE_DECIMALS` first so float noise ties.
    """
    a = np.round(np.asarray(x, dtype=float), TIE_DECIMALS)
    b = np.round(np.asarray(y, dtype=float), TIE_DECIMALS)
    if a.size == 0 or b.size == 0:
        return math.nan
    u = st.mannwhitneyu(a, b, method="asymptotic").statistic
    return float(2 * u / (a.size * b.size) - 1)


def cliff_magnitude(delta: float) -> str:
    """'negligible', 'small', 'medium' or 'large' (Romano et al. bounds); '' for NaN."""
    if delta is None or math.isnan(delta):
        return ""
    return next((label for bound, label in CLIFF_BOUNDS if abs(delta) < bound), "large")


def wilcoxon_floor(n: int) -> float:
    """Smallest two-sided p the Wilcoxon signed-rank test can reach on n pairs (exact: 2 / 2^n).

    It is the p of n distinct differences all of one sign; ties or zeros can only raise it.
    """
    if n < 1:
        return math.nan
    return float(st.wilcoxon(np.arange(1.0, n + 1)).pvalue)


@dataclass(frozen=True)
class FamilyFloor:
    """Smallest attainable Holm-adjusted p of a family of `m` Wilcoxon tests on `n` cells each."""

    n: int
    m: int
    raw: float
    adjusted: float

    def reachable(self, alpha: float) -> bool:
        return self.adjusted < alpha


def family_floor(n: int, m: int) -> FamilyFloor:
    """Holm multiplies the smallest p by the family size m, so no adjusted p is below m · floor(n)."""
    raw = wilcoxon_floor(n)
    return FamilyFloor(n, m, raw, min(1.0, m * raw))


# --------------------------------------------------------------------------- within a cell


@dataclass(frozen=True)
class SeedComparison:
    """One method against the reference in one cell. `diff` = method − reference."""

    test: str  # "paired t", "Welch t" or "skipped"
    n_method: int
    n_reference: int
    n_pairs: int
    mean_method: float = math.nan
    mean_reference: float = math.nan
    diff: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    statistic: float = math.nan
    df: float = math.nan
    p: float = math.nan
    note: str = ""
    cliffs_delta: float = math.nan
    magnitude: str = ""


def _zero_variance(values: np.ndarray) -> bool:
    return len(values) > 0 and float(np.ptp(values)) < 10.0 ** -TIE_DECIMALS


def _paired(method: pd.Series, reference: pd.Series, common: list, level: float) -> SeedComparison:
    a, b = method.loc[common].to_numpy(float), reference.loc[common].to_numpy(float)
    base = {"n_method": len(method), "n_reference": len(reference), "n_pairs": len(common),
            "mean_method": float(a.mean()), "mean_reference": float(b.mean()), "diff": float((a - b).mean())}
    unmatched = len(method) + len(reference) - 2 * len(common)
    note = f"{unmatched} unmatched run(s) left out" if unmatched else ""
    if _zero_variance(a - b):
        return _constant(base, f"every one of the {len(common)} paired differences", note)
    res = st.ttest_rel(a, b)
    ci = res.confidence_interval(confidence_level=level)
    return SeedComparison("paired t", **base, ci_low=float(ci.low), ci_high=float(ci.high),
                          statistic=float(res.statistic), df=float(res.df), p=float(res.pvalue), note=note)


def _constant(base: dict, what: str, note: str) -> SeedComparison:
    """Zero-variance differences: none at all ('skipped'), or a certain, constant gain (`CONSTANT`).

    A t-test is degenerate here (t = ±∞ or 0/0), so p stays NaN and the comparison is outside the
    Holm family; the report shows the direction and size instead, with a zero-width interval.
    """
    diff = base["diff"]
    if abs(diff) < 10.0 ** -TIE_DECIMALS:
        return SeedComparison("skipped", **{**base, "diff": 0.0},
                              note="; ".join(filter(None, [f"no difference: {what} is 0 (zero variance)", note])))
    side = "higher" if diff > 0 else "lower"
    text = (f"{what} is {diff:+.2f}: the method is {side} every time; the test is degenerate (zero variance), "
            "p not applicable")
    return SeedComparison(CONSTANT, **base, ci_low=diff, ci_high=diff, note="; ".join(filter(None, [text, note])))


def _welch(method: pd.Series, reference: pd.Series, common: list, level: float) -> SeedComparison:
    a, b = method.to_numpy(float), reference.to_numpy(float)
    base = {"n_method": len(a), "n_reference": len(b), "n_pairs": len(common),
            "mean_method": float(a.mean()), "mean_reference": float(b.mean()), "diff": float(a.mean() - b.mean())}
    if _zero_variance(a) and _zero_variance(b):
        return _constant(base, f"both samples are constant ({len(a)} vs {len(b)} runs); the difference",
                         f"unpaired: {len(common)} common seed(s)")
    res = st.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(confidence_level=level)
    return SeedComparison("Welch t", **base, ci_low=float(ci.low), ci_high=float(ci.high),
                          statistic=float(res.statistic), df=float(res.df), p=float(res.pvalue),
                          note=f"unpaired: {len(common)} common seed(s)")


def compare_seeds(method: pd.Series, reference: pd.Series, alpha: float = 0.05) -> SeedComparison:
    """Test one method against the reference over the seeds of one cell.

    Both series are indexed by the pairing key (data seed, train seed). With ≥3 common keys: a
    paired t-test on the common keys (unmatched runs left out). Otherwise, with ≥3 runs on each
    side: Welch's t-test on all runs, treated as independent. Otherwise the test is skipped.
    The interval is the (1 − alpha) t-interval of method − reference. Differences without variance
    are either no difference ('skipped') or a certain one (`CONSTANT`, p NaN). Cliff's δ (method
    runs vs reference runs, unpaired) is given when each side has ≥ `MIN_SEEDS` runs.
    """
    method, reference = method.dropna(), reference.dropna()
    common = [key for key in method.index if key in reference.index]
    level = 1 - alpha
    if len(method) >= MIN_SEEDS and len(reference) >= MIN_SEEDS:
        delta = cliffs_delta(method.to_numpy(float), reference.to_numpy(float))
        effect = {"cliffs_delta": delta, "magnitude": cliff_magnitude(delta)}
    else:
        effect = {}
    if len(common) >= MIN_SEEDS:
        return dataclasses.replace(_paired(method, reference, common, level), **effect)
    if len(method) >= MIN_SEEDS and len(reference) >= MIN_SEEDS:
        return dataclasses.replace(_welch(method, reference, common, level), **effect)
    mean_m = float(method.mean()) if len(method) else math.nan
    mean_r = float(reference.mean()) if len(reference) else math.nan
    note = f"too few seeds: {len(common)} paired, {len(method)} vs {len(reference)} runs (need {MIN_SEEDS})"
    return SeedComparison("skipped", len(method), len(reference), len(common), mean_method=mean_m,
                          mean_reference=mean_r, diff=mean_m - mean_r, note=note)


def _seed_series(scores: pd.DataFrame) -> pd.Series:
    """Metric values keyed by (data seed, train seed); a repeated key keeps the mean of its runs."""
    return scores.groupby(["data_seed", "seed"])["value"].mean()


def _cell_frame(frame: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for key in CELL_KEYS:
        mask &= (frame[key] == getattr(cell, key)).to_numpy()
    return frame[mask]


def _failed_note(runs: pd.DataFrame) -> str:
    failed = runs[runs["status"] == "failed"]
    if failed.empty:
        return "no finished run with this metric"
    first = str(failed["error"].iloc[0]).splitlines()[0] if str(failed["error"].iloc[0]) else "no error message"
    return f"no finished run ({len(failed)} failed: {first})"


def _with_failures(comp: SeedComparison, runs: pd.DataFrame) -> SeedComparison:
    """Append the count of failed runs (which the test could not use) to the note."""
    failed = int((runs["status"] == "failed").sum())
    if not failed:
        return comp
    return dataclasses.replace(comp, note="; ".join(filter(None, [comp.note, f"{failed} failed run(s)"])))


def _reference_row(cell: Cell, reference: str, ref: pd.Series) -> dict:
    mean = float(ref.mean()) if len(ref) else math.nan
    return {"cell": cell, "method": reference, "test": "reference", "n_method": len(ref), "n_reference": len(ref),
            "n_pairs": len(ref), "mean_method": mean, "mean_reference": mean,
            "note": "" if len(ref) else "no finished run"}


def _cell_rows(results: Results, scores: pd.DataFrame, cell: Cell, reference: str, alpha: float) -> list[dict]:
    """The reference row and one comparison row per other method that has runs in this cell."""
    runs, cell_scores = _cell_frame(results.runs, cell), _cell_frame(scores, cell)
    present = [m for m in results.methods() if m in set(runs["method"])]
    if reference not in present:
        return []
    ref = _seed_series(cell_scores[cell_scores["method"] == reference])
    rows = [_reference_row(cell, reference, ref)]
    for method in (m for m in present if m != reference):
        mine = _seed_series(cell_scores[cell_scores["method"] == method])
        if mine.empty:
            comp = SeedComparison("skipped", 0, len(ref), 0, note=_failed_note(runs[runs["method"] == method]))
        elif ref.empty:
            comp = SeedComparison("skipped", len(mine), 0, 0, mean_method=float(mine.mean()),
                                  note=f"reference {reference} has no finished run here")
        else:
            comp = _with_failures(compare_seeds(mine, ref, alpha), runs[runs["method"] == method])
        rows.append({"cell": cell, "method": method, **comp.__dict__})
    adjusted, reject = holm([row.get("p", math.nan) for row in rows], alpha)  # the reference row has no p
    for row, p_holm, rej in zip(rows, adjusted, reject):
        row["p_holm"] = p_holm
        row["significant"] = bool(rej) if not math.isnan(p_holm) else None
    return rows


WITHIN_COLUMNS = ["cell", "method", "test", "n_method", "n_reference", "n_pairs", "mean_method", "mean_reference",
                  "diff", "ci_low", "ci_high", "statistic", "df", "p", "p_holm", "significant", "cliffs_delta",
                  "magnitude", "note"]


def within_cells(results: Results, metric: str = "last", reference: str | None = None, alpha: float = 0.05
                 ) -> pd.DataFrame:
    """Reference vs every other method in each cell where the reference ran (see `compare_seeds`).

    One row per (cell, method), the reference's own row first (test "reference"); `p_holm` is
    Holm over the tests run in that cell; `significant` is None where no test ran. The reference
    defaults to the registry's baseline method.
    """
    reference = reference or baseline_method()
    scores = results.scores(metric)
    rows = [row for cell in results.cells() for row in _cell_rows(results, scores, cell, reference, alpha)]
    return pd.DataFrame(rows, columns=WITHIN_COLUMNS)


# --------------------------------------------------------------------------- across cells


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's χ²_F (scipy, tie-corrected) and the Iman-Davenport F_F derived from it."""

    chi2: float
    p: float
    f: float
    df1: int
    df2: int
    p_f: float


def iman_davenport(chi2: float, n: int, k: int) -> tuple[float, int, int, float]:
    """F_F = (N−1)χ²_F / (N(k−1) − χ²_F) on (k−1, (k−1)(N−1)) df, and its p-value (Demšar 2006 eq. 3)."""
    df1, df2 = k - 1, (k - 1) * (n - 1)
    denominator = n * (k - 1) - chi2
    if denominator <= 1e-12 * n * (k - 1):  # every cell ranks the methods identically
        return math.inf, df1, df2, 0.0
    f = (n - 1) * chi2 / denominator
    return f, df1, df2, float(st.f.sf(f, df1, df2))


def friedman(matrix: pd.DataFrame) -> FriedmanResult:
    """Friedman test over complete cells (rows) x methods (columns, ≥3), with Iman-Davenport."""
    full = matrix.round(TIE_DECIMALS)
    n, k = full.shape
    res = st.friedmanchisquare(*(full[c].to_numpy(float) for c in full.columns))
    f, df1, df2, p_f = iman_davenport(float(res.statistic), n, k)
    return FriedmanResult(float(res.statistic), float(res.pvalue), f, df1, df2, p_f)


PAIR_COLUMNS = ["method_a", "method_b", "n_cells", "mean_diff", "wins", "ties", "losses", "statistic", "p",
                "p_holm", "significant", "cliffs_delta", "magnitude", "rank_diff", "nemenyi_p", "nemenyi_significant"]
VERSUS_COLUMNS = ["method", "reference", "n_cells", "mean_diff", "wins", "ties", "losses", "statistic", "p", "p_holm",
                  "significant", "cliffs_delta", "magnitude"]


def _wilcoxon_pair(full: pd.DataFrame, a: str, b: str) -> dict:
    """Wilcoxon signed-rank of A − B over the cells (rows) of `full`, with counts and Cliff's δ."""
    x, y = full[a].to_numpy(float), full[b].to_numpy(float)
    d = x - y
    res = st.wilcoxon(x, y, zero_method=ZERO_METHOD)
    delta = cliffs_delta(x, y)
    return {"n_cells": len(d), "mean_diff": float(d.mean()), "wins": int((d > 0).sum()),
            "ties": int((d == 0).sum()), "losses": int((d < 0).sum()), "statistic": float(res.statistic),
            "p": float(res.pvalue), "cliffs_delta": delta, "magnitude": cliff_magnitude(delta)}


def pairwise_wilcoxon(matrix: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Wilcoxon signed-rank over cells for every pair of methods (columns), Holm over all pairs.

    Differences are A − B; zero differences use `ZERO_METHOD`; scipy picks the p-value method
    (exact without ties/zeros, exact sign-flip permutation with them up to 13 cells, normal beyond).
    This is the secondary family; `versus_reference` is the primary one.
    """
    full = matrix.round(TIE_DECIMALS)
    rows = [{"method_a": a, "method_b": b, **_wilcoxon_pair(full, a, b)} for a, b in combinations(full.columns, 2)]
    frame = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    frame["p_holm"], frame["significant"] = holm(frame["p"].to_numpy(float), alpha)
    return frame


def versus_reference(matrix: pd.DataFrame, reference: str, alpha: float = 0.05) -> pd.DataFrame:
    """The primary family: Wilcoxon signed-rank over cells of each other method against `reference`.

    k − 1 tests of method − reference, Holm over those k − 1 only (so, unlike the all-pairs
    family, it can reach significance at N = 10 cells); Cliff's δ of the two columns of cell scores.
    """
    full = matrix.round(TIE_DECIMALS)
    rows = [{"method": m, "reference": reference, **_wilcoxon_pair(full, m, reference)}
            for m in full.columns if m != reference]
    frame = pd.DataFrame(rows, columns=VERSUS_COLUMNS)
    frame["p_holm"], frame["significant"] = holm(frame["p"].to_numpy(float), alpha)
    return frame


def holm_matrix(pairs: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Symmetric method x method matrix of the all-pairs Holm-adjusted p (1 on the diagonal)."""
    out = pd.DataFrame(np.eye(len(methods)), index=list(methods), columns=list(methods))
    for a, b, p in zip(pairs["method_a"], pairs["method_b"], pairs["p_holm"]):
        out.loc[a, b] = out.loc[b, a] = float(p)
    return out


@dataclass
class AcrossCells:
    """Across-cell analysis on complete cells; `skipped` says why a part could not run."""

    n_cells: int
    k: int
    methods: list[str]
    cells: list[Cell]
    dropped: list[tuple[Cell, list[str]]]
    left_out: list[str] = field(default_factory=list)  # methods without any finished run
    ranks: pd.DataFrame | None = None
    friedman: FriedmanResult | None = None
    friedman_skipped: str = ""
    pairs: pd.DataFrame | None = None
    nemenyi_p: pd.DataFrame | None = None
    cd: float = math.nan
    skipped: str = ""
    reference: str | None = None
    versus: pd.DataFrame | None = None  # the primary family (None when the reference is not among the methods)
    versus_skipped: str = ""
    mean_ci: pd.DataFrame | None = None  # stratified bootstrap interval of each method's across-cell mean

    def floors(self) -> dict[str, FamilyFloor]:
        """Smallest attainable Holm-adjusted p of the primary and the all-pairs family."""
        out = {}
        if self.versus is not None:
            out["primary"] = family_floor(self.n_cells, len(self.versus))
        if self.pairs is not None:
            out["all pairs"] = family_floor(self.n_cells, len(self.pairs))
        return out


def _ranks_table(full: pd.DataFrame) -> pd.DataFrame:
    """Average rank, mean score and rank-1 count per method, best average rank first."""
    firsts = full.round(TIE_DECIMALS).rank(axis=1, ascending=False, method="min").eq(1).sum(axis=0)
    table = pd.DataFrame({"method": full.columns, "avg_rank": average_ranks(full).to_numpy(),
                          "mean": full.mean(axis=0).to_numpy(), "first_places": firsts.to_numpy(),
                          "n_cells": len(full), "order": range(full.shape[1])})
    return table.sort_values(["avg_rank", "order"]).drop(columns="order").reset_index(drop=True)


def _add_nemenyi(pairs: pd.DataFrame, ranks: pd.Series, pvalues: pd.DataFrame, alpha: float) -> pd.DataFrame:
    pairs = pairs.copy()
    pairs["rank_diff"] = [float(ranks[a] - ranks[b]) for a, b in zip(pairs["method_a"], pairs["method_b"])]
    pairs["nemenyi_p"] = [float(pvalues.loc[a, b]) for a, b in zip(pairs["method_a"], pairs["method_b"])]
    pairs["nemenyi_significant"] = pairs["nemenyi_p"] < alpha
    return pairs


def across_cells(matrix: pd.DataFrame, alpha: float = 0.05, reference: str | None = None) -> AcrossCells:
    """Ranks, Friedman + Iman-Davenport, Wilcoxon-Holm and Nemenyi on the complete cells of `matrix`.

    With a `reference` among the methods, the primary family (`versus_reference`) is run too.
    """
    left_out = [m for m in matrix.columns if matrix[m].isna().all()]
    matrix = matrix.drop(columns=left_out)
    full, dropped_cells = complete_blocks(matrix)
    dropped = [(cell, [m for m in matrix.columns if pd.isna(matrix.loc[cell, m])]) for cell in dropped_cells]
    out = AcrossCells(n_cells=len(full), k=full.shape[1], methods=list(full.columns), cells=list(full.index),
                      dropped=dropped, left_out=left_out, reference=reference)
    if out.k < 2 or out.n_cells < 2:
        out.skipped = (f"needs ≥2 methods on ≥2 complete cells (cells where every method has a finished run); "
                       f"found {out.k} method(s) on {out.n_cells} complete cell(s)")
        return out
    out.ranks = _ranks_table(full)
    if out.k >= 3:
        out.friedman = friedman(full)
    else:
        out.friedman_skipped = "Friedman needs ≥3 methods"
    ranks, out.nemenyi_p, out.cd = nemenyi(full, alpha)
    out.pairs = _add_nemenyi(pairwise_wilcoxon(full, alpha), ranks, out.nemenyi_p, alpha)
    if reference is None:
        out.versus_skipped = "no reference method given"
    elif reference not in out.methods:
        out.versus_skipped = f"the reference {display_name(reference)} has no complete cell"
    else:
        out.versus = versus_reference(full, reference, alpha)
    return out


# --------------------------------------------------------------------------- bootstrap interval of the mean


def _mean_of_means(*samples: np.ndarray, axis: int = -1, fixed: float = 0.0, n_cells: int = 1) -> np.ndarray:
    return (fixed + sum(x.mean(axis=axis) for x in samples)) / n_cells


def stratified_bootstrap(per_cell: Sequence[Sequence[float]], alpha: float = 0.05,
                         n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile interval of the mean over cells of the per-cell seed means, seeds resampled within cells.

    The cells are the strata and stay fixed (the across-cell mean is over these cells); each
    cell's seeds are resampled with replacement, independently of the other cells — scipy's
    multi-sample `bootstrap` with `paired=False`. Cells with a single seed have nothing to
    resample and contribute their value as it is; (NaN, NaN) when no cell has two seeds.
    """
    arrays = [np.asarray(v, dtype=float) for v in per_cell]
    varied = tuple(a for a in arrays if a.size >= 2)
    if not varied:
        return math.nan, math.nan
    fixed = float(sum(a.mean() for a in arrays if a.size < 2))
    statistic = functools.partial(_mean_of_means, fixed=fixed, n_cells=len(arrays))
    res = st.bootstrap(varied, statistic, n_resamples=n_resamples, vectorized=True, paired=False, axis=-1,
                       confidence_level=1 - alpha, method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_intervals(scores: pd.DataFrame, cells: Sequence[Cell], methods: Sequence[str], alpha: float = 0.05
                   ) -> pd.DataFrame:
    """Per method: across-cell mean of seed means over `cells`, its stratified bootstrap interval, seeds used."""
    rows = []
    for method in methods:
        mine = scores[scores["method"] == method]
        per_cell = [_seed_series(_cell_frame(mine, cell)).to_numpy(float) for cell in cells]
        low, high = stratified_bootstrap(per_cell, alpha)
        rows.append({"method": method, "mean": float(np.mean([v.mean() for v in per_cell])), "ci_low": low,
                     "ci_high": high, "n_cells": len(per_cell), "n_seeds": int(sum(v.size for v in per_cell))})
    return pd.DataFrame(rows, columns=["method", "mean", "ci_low", "ci_high", "n_cells", "n_seeds"])


# --------------------------------------------------------------------------- the report


@dataclass
class StatsReport:
    """Everything `python -m bench stats` prints and writes, for one metric."""

    name: str
    metric: str
    reference: str
    alpha: float
    within: pd.DataFrame
    across: AcrossCells
    notes: list[str]
    no_reference: list[Cell] = field(default_factory=list)  # cells with runs but none of the reference


def _check_inputs(results: Results, metric: str, reference: str, alpha: float) -> pd.DataFrame:
    """The finished scores, or a UsageError naming what is wrong and what exists."""
    metric_column(metric)
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must lie strictly between 0 and 1, got {alpha}")
    methods = results.methods()
    if reference not in methods:
        raise UsageError(f"reference method '{reference}' has no run in '{results.root}'; "
                         f"methods present: {', '.join(methods)}")
    scores = results.scores(metric)
    if scores.empty:
        raise UsageError(f"'{results.root}' holds no finished run with a '{metric}' score; nothing to test")
    per_cell = scores.groupby(list(CELL_KEYS))["method"].nunique()
    if per_cell.max() < 2:
        raise UsageError(f"no cell in '{results.root}' has finished runs of ≥2 methods; nothing to compare")
    return scores


def _notes(report_ref: str, metric: str, alpha: float, across: AcrossCells) -> list[str]:
    level = f"{100 * (1 - alpha):g} %"
    ref = display_name(report_ref)
    notes = [
        f"Δ = method − {ref}, in accuracy points: positive means the method scores higher than {ref}.",
        (f"Within a cell, runs are paired by (data seed, train seed). With ≥{MIN_SEEDS} pairs: paired t-test "
         f"on the pairs (unmatched runs left out). With fewer pairs but ≥{MIN_SEEDS} runs of each method: "
         "Welch's t-test, runs treated as independent. Otherwise skipped. n is the number of pairs for a "
         f"paired test and 'method vs reference' runs otherwise; the interval is the {level} t-interval of Δ."),
        (f"Holm family: {ref} against every other tested method, within one cell and one metric. "
         f"Sig. = Holm-adjusted p < {alpha:g}."),
        (f"Test '{CONSTANT}': every paired difference is the same non-zero value, so the method is higher "
         "(or lower) on every seed by exactly that much; a t-test is degenerate there (zero variance), so no "
         "p is shown ('n/a') and the comparison stays out of the Holm family; Sig. says 'certain'."),
        ("Cliff's δ = P(method > reference) − P(method < reference) over all pairs of values (seed runs "
         f"within a cell, given with ≥{MIN_SEEDS} runs a side; cell scores across cells); magnitude after "
         "Romano et al.: |δ| < 0.147 negligible, < 0.33 small, < 0.474 medium, else large."),
        ("Across cells each cell is scored by its seed mean; only complete cells (every method finished) are "
         "used. Ties in rank share the average rank."),
        (f"Mean {level} CI (bootstrap): stratified bootstrap of the across-cell mean — the complete cells are kept, "
         f"each cell's seeds are resampled with replacement ({BOOTSTRAP_RESAMPLES} resamples, percentile interval, "
         "fixed generator seed); a cell with one seed enters as it is. It shows seed noise only, not which cells "
         "were chosen."),
        (f"Wilcoxon signed-rank: zero differences handled with zero_method='{ZERO_METHOD}' (ranks split "
         "between signs); p exact without ties, by exact sign-flip permutation with ties up to 13 cells, "
         "normal approximation beyond."),
        (f"Primary family across cells: {ref} against each of the other k − 1 methods, Holm over those k − 1 "
         "tests. Secondary family: all k(k − 1)/2 pairs, Holm over all of them (more tests, so a larger Holm "
         "multiplier and less power). Nemenyi verdicts depend on which other methods are in the pool "
         "(Benavoli et al. 2016), so Wilcoxon-Holm is the pairwise test; Nemenyi is shown for reference."),
    ]
    if across.n_cells >= 2:
        datasets = sorted({c.dataset for c in across.cells})
        notes.append(f"The {across.n_cells} cells come from {len(datasets)} base dataset(s) ({', '.join(datasets)}); "
                     "they share images and noise draws, so they are not independent samples and the "
                     "across-cell p-values are descriptive, not confirmatory.")
    if metric == "best":
        notes.append("Best = highest test accuracy over epochs, selected on the test set (optimistic).")
    return notes


def _floor_sentence(name: str, floor: FamilyFloor, alpha: float) -> str:
    """The smallest adjusted p a family can reach, and whether that is below alpha."""
    text = (f"Smallest attainable Holm-adjusted p, {name} family ({floor.m} test{'s' * (floor.m != 1)}, "
            f"N = {floor.n} cells): exact Wilcoxon floor 2/2^{floor.n} = {floor.raw:.3g} × Holm multiplier "
            f"{floor.m} = {floor.adjusted:.3g}.")
    if not floor.reachable(alpha):
        text += (f" No pair in this family can be significant at N = {floor.n} (α = {alpha:g}), "
                 "whatever the data.")
    return text


def build_report(results: Results, metric: str = "last", reference: str | None = None, alpha: float = 0.05
                 ) -> StatsReport:
    """Run every test of the stats command on `results` for one metric (reference: the baseline)."""
    reference = reference or baseline_method()
    _check_inputs(results, metric, reference, alpha)
    within = within_cells(results, metric, reference, alpha)
    matrix = results.cell_matrix(metric)
    across = across_cells(matrix, alpha, reference)
    across.left_out = [m for m in results.methods() if m not in matrix.columns] + across.left_out
    if not across.skipped:
        across.mean_ci = mean_intervals(results.scores(metric), across.cells, across.methods, alpha)
    no_reference = [c for c in results.cells() if c not in set(within["cell"])]
    return StatsReport(results.root.name, metric, reference, alpha, within, across,
                       _notes(reference, metric, alpha, across), no_reference)


# --------------------------------------------------------------------------- number formatting


def _num(value: float | None, decimals: int = 2, signed: bool = False) -> str:
    """Fixed decimals, '–' for missing, no '-0.00'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    rounded = round(float(value), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:+.{decimals}f}" if signed else f"{rounded:.{decimals}f}"


def _p(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _p_is(value: float | None) -> str:
    """'p = 0.0123' or 'p < 0.0001' for running text."""
    text = _p(value)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def _flag(value: bool | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else ("yes" if value else "no")


def _n(row: pd.Series) -> str:
    """Pairs when the comparison was paired, else 'runs of the method vs runs of the reference'."""
    if row["test"] == "reference":
        return str(row["n_method"])
    if row["n_pairs"] >= MIN_SEEDS:
        return str(row["n_pairs"])
    return f"{row['n_method']} vs {row['n_reference']}"


def _ci(row: pd.Series) -> str:
    if math.isnan(row["ci_low"]):
        return "–"
    return f"[{_num(row['ci_low'], signed=True)}, {_num(row['ci_high'], signed=True)}]"


# --------------------------------------------------------------------------- tables (shared rows)


def _within_rows(report: StatsReport) -> tuple[list[str], list[list[str]], list[bool]]:
    """Header, text rows and 'first row of a cell' flags of the within-cells table."""
    level = f"{100 * (1 - report.alpha):g}% CI"
    header = ["Cell", "Method", "n", "Test", "Mean", f"Δ vs {display_name(report.reference)}", level, "p",
              "p (Holm)", "Sig.", "Cliff's δ", "Note"]
    rows, firsts, previous = [], [], None
    for _, r in report.within.iterrows():
        is_ref, constant = r["test"] == "reference", r["test"] == CONSTANT
        p, p_holm, sig = ("n/a", "n/a", "certain") if constant else (_p(r["p"]), _p(r["p_holm"]),
                                                                      _flag(r["significant"]))
        rows.append([r["cell"].label() if r["cell"] != previous else "", display_name(r["method"]), _n(r),
                     r["test"], _num(r["mean_method"]), "" if is_ref else _num(r["diff"], signed=True),
                     "" if is_ref else _ci(r), "" if is_ref else p, "" if is_ref else p_holm,
                     "" if is_ref else sig, "" if is_ref else _delta(r["cliffs_delta"], r["magnitude"]), r["note"]])
        firsts.append(r["cell"] != previous)
        previous = r["cell"]
    return header, rows, firsts


def _delta(delta: float, magnitude: str) -> str:
    """'+0.56 (large)', or '–' where δ was not computed."""
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return "–"
    return f"{_num(delta, signed=True)} ({magnitude})"


def _versus_rows(across: AcrossCells) -> tuple[list[str], list[list[str]]]:
    ref = display_name(across.reference)
    header = ["Method", f"Δ mean vs {ref}", "W/T/L", "Wilcoxon p", "p (Holm)", "Sig.", "Cliff's δ"]
    rows = [[display_name(r["method"]), _num(r["mean_diff"], signed=True), f"{r['wins']}/{r['ties']}/{r['losses']}",
             _p(r["p"]), _p(r["p_holm"]), _flag(r["significant"]), _delta(r["cliffs_delta"], r["magnitude"])]
            for _, r in across.versus.iterrows()]
    return header, rows


def _floor_lines(across: AcrossCells, alpha: float) -> dict[str, str]:
    return {name: _floor_sentence(name, floor, alpha) for name, floor in across.floors().items()}


def _rank_rows(across: AcrossCells, alpha: float = 0.05) -> tuple[list[str], list[list[str]]]:
    header = ["Method", "Avg rank", "Mean", "Rank-1 cells"]
    rows = [[display_name(r["method"]), _num(r["avg_rank"]), _num(r["mean"]), str(r["first_places"])]
            for _, r in across.ranks.iterrows()]
    if across.mean_ci is not None:
        header.append(f"Mean {100 * (1 - alpha):g}% CI (bootstrap)")
        ci = across.mean_ci.set_index("method")
        for row, method in zip(rows, across.ranks["method"]):
            low, high = ci.loc[method, "ci_low"], ci.loc[method, "ci_high"]
            row.append("–" if math.isnan(low) else f"[{_num(low)}, {_num(high)}]")
    return header, rows


def _pair_rows(across: AcrossCells) -> tuple[list[str], list[list[str]]]:
    header = ["A", "B", "Δ mean (A−B)", "W/T/L", "Wilcoxon p", "p (Holm)", "Sig.", "Cliff's δ", "Δ rank",
              "Nemenyi p", "Sig."]
    rows = [[display_name(r["method_a"]), display_name(r["method_b"]), _num(r["mean_diff"], signed=True),
             f"{r['wins']}/{r['ties']}/{r['losses']}", _p(r["p"]), _p(r["p_holm"]), _flag(r["significant"]),
             _delta(r["cliffs_delta"], r["magnitude"]), _num(r["rank_diff"], signed=True), _p(r["nemenyi_p"]),
             _flag(r["nemenyi_significant"])]
            for _, r in across.pairs.iterrows()]
    return header, rows


def _friedman_line(across: AcrossCells) -> str:
    if across.friedman is None:
        return f"Friedman: skipped ({across.friedman_skipped})."
    fr = across.friedman
    return (f"Friedman χ²_F = {_num(fr.chi2, 3)} (df = {across.k - 1}), {_p_is(fr.p)}; "
            f"Iman–Davenport F_F = {_num(fr.f, 3)} (df = {fr.df1}, {fr.df2}), {_p_is(fr.p_f)}.")


def _cd_line(across: AcrossCells, alpha: float) -> str:
    return (f"Nemenyi critical difference CD = {_num(across.cd, 3)} ranks (q_α = {_num(_q_alpha(across.k, alpha), 3)}, "
            f"k = {across.k}, N = {across.n_cells}, α = {alpha:g}); two methods differ when |Δ rank| > CD.")


def _dropped_line(across: AcrossCells) -> str:
    if not across.dropped:
        return "No cell dropped."
    parts = [f"{cell.label()} (missing: {', '.join(display_name(m) for m in missing)})"
             for cell, missing in across.dropped]
    return "Dropped (incomplete): " + "; ".join(parts) + "."


# --------------------------------------------------------------------------- Markdown


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table padded to column width, so it reads in a terminal too."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _md_across(report: StatsReport) -> list[str]:
    across = report.across
    lines = ["## Across cells (seed means per cell)", "",
             f"N = {across.n_cells} complete cells, k = {across.k} methods. {_dropped_line(across)}"]
    if across.left_out:
        lines.append(f"Left out (no finished run): {', '.join(display_name(m) for m in across.left_out)}.")
    if across.skipped:
        return [*lines, "", f"Skipped: {across.skipped}.", ""]
    header, rows = _rank_rows(across, report.alpha)
    floors = _floor_lines(across, report.alpha)
    lines += ["", "### Average ranks (1 = best)", "", _md_table(header, rows), "", _friedman_line(across), ""]
    ref = display_name(report.reference)
    lines += [f"### Primary: each method vs {ref}, Wilcoxon signed-rank + Holm over k − 1 = {across.k - 1} tests", ""]
    if across.versus is None:
        lines += [f"Skipped: {across.versus_skipped}.", ""]
    else:
        lines += [f"W/T/L: cells where the method beats / ties / loses to {ref}.", "",
                  _md_table(*_versus_rows(across)), "", floors["primary"], ""]
    lines += [f"### Secondary: all pairs, Wilcoxon signed-rank + Holm over {len(across.pairs)} tests; Nemenyi", "",
              "W/T/L: cells where A beats / ties / loses to B. Δ rank = rank(A) − rank(B) (negative: A ranks better).",
              "", _md_table(*_pair_rows(across)), "", floors["all pairs"], "", _cd_line(across, report.alpha), ""]
    return lines


def _within_summary(report: StatsReport) -> str:
    """One line: how many comparisons ran, and how many are significant after Holm."""
    others = report.within[report.within["test"] != "reference"]
    tested = others[~others["test"].isin(["skipped", CONSTANT])]
    constant = int(others["test"].eq(CONSTANT).sum())
    skipped = len(others) - len(tested) - constant
    significant = int(tested["significant"].eq(True).sum())
    line = (f"{len(tested)} of {len(others)} comparisons tested ({skipped} skipped, see Note); "
            f"{significant} significant after Holm at α = {report.alpha:g}.")
    if constant:
        line += f" {constant} certain difference(s): the same non-zero Δ on every seed (test '{CONSTANT}')."
    if report.no_reference:
        line += (f" Cells without a {display_name(report.reference)} run: "
                 f"{'; '.join(c.label() for c in report.no_reference)}.")
    return line


def render_summary(report: StatsReport) -> str:
    """The short form of the report (the README's reports): the within-cell count of differences from the
    reference, the average ranks with Friedman's test, and the reach of the primary family across cells."""
    lines = [f"Within cells ({display_name(report.reference)} against each method, paired t-test over seeds, Holm "
             f"per cell): {_within_summary(report)}"]
    across = report.across
    if across.skipped:
        return "\n\n".join([*lines, f"Across cells: skipped ({across.skipped})."])
    header, rows = _rank_rows(across, report.alpha)
    lines += [f"Across the {across.n_cells} cells (seed means): average ranks, 1 = best.", _md_table(header, rows),
              _friedman_line(across)]
    floors = _floor_lines(across, report.alpha)
    if "primary" in floors:
        lines.append(floors["primary"])
    return "\n\n".join(lines)


def render_markdown(report: StatsReport) -> str:
    """The report as Markdown (what the CLI prints)."""
    label = METRIC_LABELS.get(report.metric, report.metric)
    header, rows, _ = _within_rows(report)
    lines = [f"# Significance tests: {label} accuracy", "",
             (f"Results: {report.name} · metric: {report.metric} · reference: {display_name(report.reference)}"
              f" · α = {report.alpha:g}"), "", "## Within cells (seeds)", "", _within_summary(report), ""]
    lines += [_md_table(header, rows) if rows else "No cell has a finished run of the reference.", ""]
    lines += _md_across(report)
    lines += ["## Notes", "", *(f"- {n}" for n in report.notes), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- LaTeX

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_TEX_SYMBOLS = {"χ²_F": r"$\chi^2_F$", "F_F": r"$F_F$", "q_α": r"$q_\alpha$", "ρ": r"$\rho$", "Δ": r"$\Delta$",
                "−": "$-$", "≥": r"$\geq$", "<": "$<$", ">": "$>$", "α": r"$\alpha$", "–": "--",
                "∞": r"$\infty$", "·": r"$\cdot$"}
_TEX_TOKEN = re.compile("|".join(re.escape(s) for s in sorted(_TEX_SYMBOLS, key=len, reverse=True)))


def _tex(text: str) -> str:
    """Escape LaTeX specials and spell the few Unicode symbols the report uses."""
    pieces = _TEX_TOKEN.split(text)
    symbols = [_TEX_SYMBOLS[m] for m in _TEX_TOKEN.findall(text)] + [""]
    return "".join("".join(_TEX_SPECIAL.get(ch, ch) for ch in piece) + sym for piece, sym in zip(pieces, symbols))


def _tex_table(header: list[str], rows: list[list[str]], align: str, caption: str,
               breaks: list[bool] | None = None) -> str:
    body = []
    for i, row in enumerate(rows):
        if breaks and breaks[i] and i:
            body.append(r"\midrule")
        body.append(" & ".join(_tex(c) for c in row) + r" \\")
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{_tex(caption)}}}",
                      f"\\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(_tex(h) for h in header) + r" \\",
                      r"\midrule", *body, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])


def render_latex(report: StatsReport) -> str:
    """The report's tables as booktabs LaTeX (needs \\usepackage{booktabs})."""
    label = METRIC_LABELS.get(report.metric, report.metric)
    ref = display_name(report.reference)
    parts = [f"% Significance tests ({report.name}, metric {report.metric}); needs \\usepackage{{booktabs}}", ""]
    header, rows, firsts = _within_rows(report)
    if rows:
        parts.append(_tex_table(header, rows, "llrlrrlrrlll", f"{label} accuracy within cells: Δ = method − {ref} "
                                f"over seeds, Holm over the methods of a cell, α = {report.alpha:g}.", firsts))
    across = report.across
    if across.skipped:
        parts.append(f"% Across cells skipped: {across.skipped}")
        return "\n".join(parts) + "\n"
    rank_header, rank_rows = _rank_rows(across, report.alpha)
    parts.append(_tex_table(rank_header, rank_rows, "l" + "r" * (len(rank_header) - 1),
                            f"Average ranks over N = {across.n_cells} complete cells, k = {across.k} methods. "
                            f"{_friedman_line(across)}"))
    floors = _floor_lines(across, report.alpha)
    if across.versus is not None:
        parts.append(_tex_table(*_versus_rows(across), "lrrrrll", f"Primary family: each method vs {ref}, Wilcoxon "
                                f"signed-rank over cells, Holm over the k − 1 = {across.k - 1} tests. "
                                f"{floors['primary']}"))
    parts.append(_tex_table(*_pair_rows(across), "llrrrrllrrl", "Secondary family: all pairs, Wilcoxon signed-rank "
                            f"over cells with Holm over {len(across.pairs)} tests; Nemenyi. {floors['all pairs']} "
                            f"{_cd_line(across, report.alpha)}"))
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- CSV and entry point


def _within_csv(report: StatsReport) -> pd.DataFrame:
    frame = report.within.copy()
    cells = pd.DataFrame([{key: getattr(c, key) for key in CELL_KEYS} | {"cell": c.label()} for c in frame["cell"]],
                         columns=[*CELL_KEYS, "cell"])
    frame = pd.concat([cells, frame.drop(columns="cell").reset_index(drop=True)], axis=1)
    frame.insert(0, "metric", report.metric)
    frame.insert(len(CELL_KEYS) + 3, "reference", report.reference)
    return frame


def _friedman_csv(report: StatsReport) -> pd.DataFrame:
    across, fr = report.across, report.across.friedman
    test = {"chi2": fr.chi2, "p": fr.p, "f": fr.f, "df1": fr.df1, "df2": fr.df2, "p_f": fr.p_f} if fr else {}
    columns = ["metric", "n_cells", "k", "alpha", "chi2", "p", "f", "df1", "df2", "p_f", "cd"]
    row = {"metric": report.metric, "n_cells": across.n_cells, "k": across.k, "alpha": report.alpha, **test,
           "cd": across.cd}
    return pd.DataFrame([row], columns=columns)


def _csv_tables(report: StatsReport) -> dict[str, pd.DataFrame]:
    tables = {"within_cells.csv": _within_csv(report)}
    across = report.across
    if not across.skipped:
        tables["ranks.csv"] = across.ranks.assign(metric=report.metric)
        if across.mean_ci is not None:
            tables["mean_intervals.csv"] = across.mean_ci.assign(metric=report.metric)
        if across.versus is not None:
            tables["versus_reference.csv"] = across.versus.assign(metric=report.metric)
        tables["pairwise_wilcoxon.csv"] = across.pairs.assign(metric=report.metric)
        tables["nemenyi.csv"] = across.nemenyi_p.rename_axis("method")
        tables["friedman.csv"] = _friedman_csv(report)
    return tables


def write_stats(results: Results, *, metric: str = "last", reference: str | None = None,
                alpha: float = 0.05) -> tuple[str, list[Path]]:
    """Run the tests and write stats.md, stats.tex and the CSVs under `<results>/stats/<metric>/`.

    Returns the Markdown (for the terminal) and the written paths. Files of an earlier run that
    this one does not produce are removed, so the folder always describes one run.
    """
    report = build_report(results, metric, reference, alpha)
    out = results.root / "stats" / metric
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    markdown = render_markdown(report)
    written = [out / "stats.md", out / "stats.tex"]
    written[0].write_text(markdown, encoding="utf-8")
    written[1].write_text(render_latex(report), encoding="utf-8")
    for name, table in _csv_tables(report).items():
        table.to_csv(out / name, index=name == "nemenyi.csv", float_format="%.6g")
        written.append(out / name)
    return markdown, written
