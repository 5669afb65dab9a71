"""Significance tests (analysis/stats.py) against cases worked out by hand.

Expected values are derived in the comments from the textbook formulas, not from the code under
test; the synthetic fixture (tests/analysis/data/synthetic, see make_synthetic.py) drives the
end-to-end check of `write_stats`.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis import stats
from analysis.results import Cell, load_results
from bench.core.errors import UsageError

SYNTHETIC = Path(__file__).parent / "data" / "synthetic"


def seeds(values: dict[int, float]) -> pd.Series:
    """Metric values keyed by (data seed, train seed) = (s, s), as the harness pairs them."""
    index = pd.MultiIndex.from_tuples([(s, s) for s in values], names=["data_seed", "seed"])
    return pd.Series(list(values.values()), index=index, dtype=float)


@pytest.fixture
def synthetic(tmp_path: Path):
    """The synthetic results set, copied so that write_stats writes into a temporary folder."""
    root = tmp_path / "synthetic"
    shutil.copytree(SYNTHETIC, root)
    return load_results(root)


# --------------------------------------------------------------------------- ranks


def test_average_ranks_share_tied_ranks():
    # Rank 1 = highest accuracy; a tie shares the mean of the ranks it spans.
    #   cell 1: A 90, B 85, C 80 -> A 1,   B 2,   C 3
    #   cell 2: A 70, B 70, C 60 -> A 1.5, B 1.5, C 3    (A, B tie for ranks 1-2)
    #   cell 3: A 50, B 60, C 60 -> A 3,   B 1.5, C 1.5  (B, C tie for ranks 1-2)
    # Averages: A (1+1.5+3)/3 = 11/6, B (2+1.5+1.5)/3 = 5/3, C (3+3+1.5)/3 = 5/2 (sum 6 = k(k+1)/2).
    matrix = pd.DataFrame({"A": [90, 70, 50], "B": [85, 70, 60], "C": [80, 60, 60]}, dtype=float)
    ranks = stats.average_ranks(matrix)
    assert ranks.to_dict() == pytest.approx({"A": 11 / 6, "B": 5 / 3, "C": 5 / 2})


def test_average_ranks_treat_float_noise_as_a_tie():
    # 0.1 + 0.2 != 0.3 in binary floating point; seed means can differ like that and must still tie.
    matrix = pd.DataFrame({"A": [0.1 + 0.2, 1.0], "B": [0.3, 0.0]})
    assert stats.average_ranks(matrix).to_dict() == pytest.approx({"A": (1.5 + 1) / 2, "B": (1.5 + 2) / 2})


# --------------------------------------------------------------------------- Holm


def test_holm_adjustment_by_hand():
    # m = 4. Sorted p: 0.005, 0.01, 0.03, 0.04, multiplied by 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04;
    # the running maximum makes the last 0.06. Back in input order: 0.03, 0.06, 0.06, 0.02.
    adjusted, reject = stats.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-12)
    assert reject.tolist() == [True, False, False, True]


def test_holm_leaves_untested_out_of_the_family():
    # Only two tests ran (m = 2): 0.01 * 2 = 0.02, then max(0.02, 0.04 * 1) = 0.04.
    # Holm-Šidák (statsmodels' default) would give 1 - 0.99**2 = 0.0199 for the first: must not.
    adjusted, reject = stats.holm([0.01, math.nan, 0.04], alpha=0.05)
    assert adjusted[0] == pytest.approx(0.02, abs=1e-12)
    assert math.isnan(adjusted[1]) and not reject[1]
    assert adjusted[2] == pytest.approx(0.04, abs=1e-12)


# --------------------------------------------------------------------------- within a cell


def test_paired_t_test_by_hand():
    # Differences method - reference on the common seeds: 1, 2, 3 -> mean 2, sd 1, se 1/√3,
    # t = 2√3 ≈ 3.4641 on 2 df. For 2 df the t CDF is 1/2 + t/(2√(t²+2)), so the two-sided
    # p = 1 - t/√(t²+2) = 1 - √12/√14 ≈ 0.07418, and t_0.975,2 = 0.95·√(2/(1-0.95²)) ≈ 4.3027.
    # The method's runs come in another order and one extra run has no partner (left out).
    reference = seeds({0: 60.0, 1: 61.0, 2: 62.0})
    method = seeds({2: 65.0, 9: 99.0, 0: 61.0, 1: 63.0})
    comp = stats.compare_seeds(method, reference, alpha=0.05)
    t = 2 * math.sqrt(3)
    t_crit = 0.95 * math.sqrt(2 / (1 - 0.95**2))
    assert comp.test == "paired t"
    assert (comp.n_pairs, comp.n_method, comp.n_reference) == (3, 4, 3)
    assert comp.diff == pytest.approx(2.0)
    assert comp.statistic == pytest.approx(t)
    assert comp.df == 2
    assert comp.p == pytest.approx(1 - math.sqrt(12 / 14))
    assert (comp.ci_low, comp.ci_high) == pytest.approx((2 - t_crit / math.sqrt(3), 2 + t_crit / math.sqrt(3)))
    assert "1 unmatched" in comp.note


def test_welch_when_seeds_are_not_paired():
    # No common seed, 3 runs a side. Method 1, 2, 3 (mean 2, var 1); reference 4, 6, 8 (mean 6, var 4).
    # se = √(1/3 + 4/3) = √(5/3); t = (2 - 6)/√(5/3) ≈ -3.0984.
    # Welch-Satterthwaite df = (5/3)² / ((1/3)²/2 + (4/3)²/2) = (25/9)/(17/18) = 50/17 (pooled would be 4).
    method = seeds({0: 1.0, 1: 2.0, 2: 3.0})
    reference = seeds({5: 4.0, 6: 6.0, 7: 8.0})
    comp = stats.compare_seeds(method, reference)
    assert comp.test == "Welch t"
    assert comp.n_pairs == 0
    assert comp.diff == pytest.approx(-4.0)
    assert comp.statistic == pytest.approx(-4 / math.sqrt(5 / 3))
    assert comp.df == pytest.approx(50 / 17)
    # interval -4 ± t_0.975,df · se and two-sided p from the t distribution with the Welch df
    t_crit = st.t.ppf(0.975, 50 / 17)
    half = t_crit * math.sqrt(5 / 3)
    assert (comp.ci_low, comp.ci_high) == pytest.approx((-4 - half, -4 + half))
    assert comp.p == pytest.approx(2 * st.t.sf(4 / math.sqrt(5 / 3), 50 / 17))


def test_skips_when_fewer_than_three_seeds():
    method = seeds({0: 70.0, 1: 71.0})
    reference = seeds({0: 60.0, 1: 61.0, 2: 62.0})
    comp = stats.compare_seeds(method, reference)
    assert comp.test == "skipped"
    assert math.isnan(comp.p) and math.isnan(comp.ci_low)
    assert comp.diff == pytest.approx(70.5 - 61.0)  # still reported, as a plain difference of means
    assert "too few seeds" in comp.note and "2 paired" in comp.note


def test_skips_when_paired_differences_are_constant():
    comp = stats.compare_seeds(seeds({0: 80.5, 1: 79.5, 2: 80.0}), seeds({0: 80.5, 1: 79.5, 2: 80.0}))
    assert comp.test == "skipped" and "zero variance" in comp.note
    assert comp.diff == 0.0


# --------------------------------------------------------------------------- across cells


def test_friedman_and_iman_davenport_by_hand():
    # N = 4 cells, k = 3 methods, no ties. Ranks (1 = highest):
    #   cell 1: A 3,  B 2,  C 1  -> A 1, B 2, C 3
    #   cell 2: A 5,  B 6,  C 4  -> A 2, B 1, C 3
    #   cell 3: A 9,  B 8,  C 7  -> A 1, B 2, C 3
    #   cell 4: A 10, B 12, C 11 -> A 3, B 1, C 2
    # Average ranks R = 1.75, 1.5, 2.75.
    # χ²_F = 12N/(k(k+1))·[ΣR² - k(k+1)²/4] = 4·[3.0625 + 2.25 + 7.5625 - 12] = 3.5; p (2 df) = e^(-3.5/2).
    # F_F = (N-1)χ²/(N(k-1) - χ²) = 3·3.5/(8 - 3.5) = 7/3 on (2, 6) df;
    # for F(2, d) the survival is (1 + 2x/d)^(-d/2) = (16/9)^(-3) = 729/4096.
    matrix = pd.DataFrame({"A": [3, 5, 9, 10], "B": [2, 6, 8, 12], "C": [1, 4, 7, 11]}, dtype=float)
    assert stats.average_ranks(matrix).tolist() == pytest.approx([1.75, 1.5, 2.75])
    fr = stats.friedman(matrix)
    assert fr.chi2 == pytest.approx(3.5)
    assert fr.p == pytest.approx(math.exp(-1.75))
    assert fr.f == pytest.approx(7 / 3)
    assert (fr.df1, fr.df2) == (2, 6)
    assert fr.p_f == pytest.approx(729 / 4096)


def test_iman_davenport_when_every_cell_agrees():
    # Identical rankings in every cell: χ²_F = N(k-1), the F denominator is 0 -> F = ∞, p = 0.
    f, df1, df2, p = stats.iman_davenport(chi2=8.0, n=4, k=3)
    assert (f, df1, df2, p) == (math.inf, 2, 6, 0.0)


def test_critical_difference_matches_demsar():
    # Demšar (2006) Table 5(a): q_0.05 = 3.102 for k = 9; CD = 3.102·√(9·10/(6·10)) ≈ 3.80 at N = 10.
    assert stats._q_alpha(9, 0.05) == pytest.approx(3.102, abs=5e-4)
    assert stats.critical_difference(9, 10, 0.05) == pytest.approx(3.102 * math.sqrt(1.5), abs=1e-3)
    assert round(stats.critical_difference(9, 10, 0.05), 2) == 3.80


def test_wilcoxon_splits_zero_differences():
    # Differences A - B over 6 cells: 0, 1, 2, 3, 4, 5. With zsplit the zero takes rank 1, split
    # half to each sign: R+ = 2+3+4+5+6 + 0.5 = 20.5, R- = 0.5, statistic min = 0.5 ("wilcox" and
    # "pratt" would give 0). Only the all-positive and all-negative sign patterns of the five
    # non-zero differences reach it: p = 2/2^5 = 0.0625.
    matrix = pd.DataFrame({"A": [10.0, 11, 12, 13, 14, 15], "B": [10.0, 10, 10, 10, 10, 10]})
    pairs = stats.pairwise_wilcoxon(matrix)
    row = pairs.iloc[0]
    assert row["statistic"] == pytest.approx(0.5)
    assert row["p"] == pytest.approx(0.0625)
    assert (row["wins"], row["ties"], row["losses"]) == (5, 1, 0)
    assert row["p_holm"] == pytest.approx(0.0625)  # a family of one pair


def test_across_cells_drops_incomplete_cells_and_skips_friedman_for_two_methods():
    matrix = pd.DataFrame({"A": [1.0, 2.0, 3.0, np.nan], "B": [2.0, 1.0, 1.0, 5.0]}, index=["c1", "c2", "c3", "c4"])
    across = stats.across_cells(matrix)
    assert (across.n_cells, across.k) == (3, 2)
    assert across.dropped == [("c4", ["A"])]
    assert across.friedman is None and "≥3 methods" in across.friedman_skipped
    assert len(across.pairs) == 1 and not across.skipped


def test_across_cells_skipped_with_one_complete_cell():
    matrix = pd.DataFrame({"A": [1.0, np.nan], "B": [2.0, 1.0]}, index=["c1", "c2"])
    across = stats.across_cells(matrix)
    assert across.skipped.startswith("needs ≥2 methods on ≥2 complete cells")
    assert across.pairs is None


# --------------------------------------------------------------------------- the command's entry point


def test_within_cells_on_the_fixture(synthetic):
    within = stats.within_cells(synthetic, metric="last", reference="ce")
    tie = within[within["cell"] == Cell("cifar10", 100.0, "lt-prior", 0.1)].set_index("method")
    assert tie.loc["ce", "test"] == "reference"
    # ce and balanced_softmax are identical on every seed in this cell (the fixture's tie)
    assert tie.loc["balanced_softmax", "test"] == "skipped"
    # the only test that ran there is its own family: Holm leaves it alone
    assert tie.loc["dividemix", "p_holm"] == pytest.approx(tie.loc["dividemix", "p"])
    # three tests ran on ρ=10 λ=0.1: Holm by hand, p(1) ≤ p(2) ≤ p(3) -> 3·p(1), max(that, 2·p(2)), max(that, p(3))
    rows = within[within["cell"] == Cell("cifar10", 10.0, "lt-prior", 0.1)].set_index("method")
    raw = rows.loc[["balanced_softmax", "dividemix", "dynamic_loss"], "p"].sort_values()
    expected, running = [], 0.0
    for i, p in enumerate(raw):
        running = max(running, min(1.0, (3 - i) * p))
        expected.append(running)
    assert list(rows.loc[raw.index, "p_holm"]) == pytest.approx(expected)
    # dividemix: seeds 1, 2 failed on ρ=10 λ=0.3 -> n=1, skipped with the reason
    n1 = within[(within["cell"] == Cell("cifar10", 10.0, "lt-prior", 0.3)) & (within["method"] == "dividemix")]
    assert n1["test"].item() == "skipped" and "1 paired" in n1["note"].item()
    # dynamic_loss never ran on ρ=100 λ=0.1: no row there
    missing = within[(within["cell"] == Cell("cifar10", 100.0, "lt-prior", 0.1))]
    assert "dynamic_loss" not in set(missing["method"])


def test_write_stats_writes_every_file(synthetic):
    markdown, paths = stats.write_stats(synthetic, metric="last", reference="ce", alpha=0.05)
    names = {p.name for p in paths}
    assert names == {"stats.md", "stats.tex", "within_cells.csv", "ranks.csv", "mean_intervals.csv",
                     "versus_reference.csv", "pairwise_wilcoxon.csv", "nemenyi.csv", "friedman.csv"}
    for path in paths:
        assert path.parent == synthetic.root / "stats" / "last" and path.stat().st_size > 0
    assert (synthetic.root / "stats" / "last" / "stats.md").read_text(encoding="utf-8") == markdown
    assert "N = 3 complete cells, k = 4 methods" in markdown
    assert "cifar10 ρ=100 lt-prior 0.1 (missing: Dynamic Loss)" in markdown
    assert "not independent" in markdown
    tex = (synthetic.root / "stats" / "last" / "stats.tex").read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert "ρ" not in tex and r"$\rho$" in tex and "balanced_softmax" not in tex  # symbols spelled, names displayed
    ranks = pd.read_csv(synthetic.root / "stats" / "last" / "ranks.csv")
    assert ranks["avg_rank"].sum() == pytest.approx(4 * 5 / 2)  # ranks of k = 4 methods sum to k(k+1)/2
    # deterministic: a second run prints the same text
    assert stats.write_stats(synthetic)[0] == markdown


def test_unknown_reference_method_names_the_methods_present(synthetic):
    with pytest.raises(UsageError, match="reference method 'fsr'.*ce, balanced_softmax, dividemix, dynamic_loss"):
        stats.write_stats(synthetic, reference="fsr")


@pytest.mark.parametrize(("kwargs", "message"), [({"metric": "worst"}, "unknown metric"),
                                                  ({"alpha": 1.5}, "--alpha")])
def test_bad_arguments_fail_cleanly(synthetic, kwargs, message):
    with pytest.raises(UsageError, match=message):
        stats.write_stats(synthetic, **kwargs)


def test_a_store_without_two_methods_in_any_cell_fails_cleanly(synthetic):
    synthetic.runs = synthetic.runs[synthetic.runs["method"] == "ce"]
    with pytest.raises(UsageError, match="no cell .* ≥2 methods"):
        stats.write_stats(synthetic)


def test_write_stats_without_complete_cells_skips_across_and_clears_stale_files(synthetic):
    # Keep one cell with every method, and one where only dividemix ran: 1 complete cell, so the
    # across-cell part is skipped, and a ranks.csv left by an earlier run must not survive.
    runs = synthetic.runs
    one_cell = (runs["imbalance"] == 10) & (runs["noise_rate"] == 0.1)
    other = (runs["imbalance"] == 100) & (runs["noise_rate"] == 0.3) & (runs["method"] == "dividemix")
    synthetic.runs = runs[one_cell | other]
    stale = synthetic.root / "stats" / "last" / "ranks.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    markdown, paths = stats.write_stats(synthetic)
    assert {p.name for p in paths} == {"stats.md", "stats.tex", "within_cells.csv"}
    assert not stale.exists()
    assert "Skipped: needs ≥2 methods on ≥2 complete cells" in markdown
    assert "Cells without a CE run: cifar10 ρ=100 lt-prior 0.3." in markdown
