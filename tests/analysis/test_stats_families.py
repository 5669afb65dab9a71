"""Test families, power floors, certain differences, Cliff's δ and the CD diagram's groups.

Expected values come from independent computations written out here (enumerating every sign
pattern of the Wilcoxon statistic, counting Cliff's pairs one by one, calling scipy and
statsmodels directly), not from analysis/stats.py.
"""
from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from analysis import plots, stats
from analysis.results import Cell, Results, load_results

SYNTHETIC = Path(__file__).parent / "data" / "synthetic"


def seeds(values: dict[int, float]) -> pd.Series:
    index = pd.MultiIndex.from_tuples([(s, s) for s in values], names=["data_seed", "seed"])
    return pd.Series(list(values.values()), index=index, dtype=float)


@pytest.fixture
def synthetic(tmp_path: Path) -> Results:
    root = tmp_path / "synthetic"
    shutil.copytree(SYNTHETIC, root)
    return load_results(root)


def brute_cliff(x, y) -> float:
    """(#x > y − #x < y) / (n_x n_y), pair by pair."""
    more = sum(1 for a in x for b in y if a > b)
    less = sum(1 for a in x for b in y if a < b)
    return (more - less) / (len(x) * len(y))


def enumerated_wilcoxon_floor(n: int) -> float:
    """Two-sided exact p of n distinct differences of one sign, from all 2^n sign patterns of ranks 1..n."""
    ranks = np.arange(1, n + 1)
    plus = [int(ranks[np.array(signs, dtype=bool)].sum()) for signs in itertools.product([0, 1], repeat=n)]
    observed = 0  # all differences positive: R- = 0, the smallest possible statistic
    return min(1.0, 2 * sum(r <= observed for r in plus) / len(plus))


def nine_by_ten(seed: int = 0) -> pd.DataFrame:
    """k = 9 methods on N = 10 cells; every method beats 'ref' in every cell by a distinct margin."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 80, size=10)
    columns = {"ref": base}
    for j in range(1, 9):
        columns[f"m{j}"] = base + j + rng.uniform(0.01, 0.5, size=10)  # positive, no tied |differences|
    return pd.DataFrame(columns, index=[f"c{i}" for i in range(10)])


# --------------------------------------------------------------------------- floors (item 1)


@pytest.mark.parametrize("n", [3, 5, 6, 10])
def test_wilcoxon_floor_matches_enumeration(n):
    assert stats.wilcoxon_floor(n) == pytest.approx(enumerated_wilcoxon_floor(n))
    assert stats.wilcoxon_floor(n) == pytest.approx(2 / 2**n)


def test_family_floors_at_k9_n10():
    # primary: 8 tests, 8 · 2/1024 = 0.015625 < 0.05; all pairs: 36 · 2/1024 = 0.0703125 ≥ 0.05
    primary, pairs = stats.family_floor(10, 8), stats.family_floor(10, 36)
    assert primary.adjusted == pytest.approx(8 * 2 / 1024) and primary.reachable(0.05)
    assert pairs.adjusted == pytest.approx(36 * 2 / 1024) and not pairs.reachable(0.05)
    assert stats.family_floor(3, 6).adjusted == 1.0  # capped at 1


def test_primary_family_reaches_significance_where_all_pairs_cannot():
    matrix = nine_by_ten()
    across = stats.across_cells(matrix, alpha=0.05, reference="ref")
    versus = across.versus.set_index("method")
    assert list(versus.index) == [f"m{j}" for j in range(1, 9)]
    # independent: scipy's Wilcoxon per method, then statsmodels' Holm over the 8
    raw = [st.wilcoxon(matrix[m] - matrix["ref"]).pvalue for m in versus.index]
    assert raw == pytest.approx([2 / 1024] * 8)
    assert list(versus["p_holm"]) == pytest.approx(list(multipletests(raw, method="holm")[1]))
    assert versus["significant"].all() and (versus["wins"] == 10).all()
    # all 36 pairs: even the best one is 36 · 2/1024 > 0.05
    assert len(across.pairs) == 36 and not across.pairs["significant"].any()
    assert across.pairs["p_holm"].min() >= 36 * 2 / 1024 - 1e-12
    floors = across.floors()
    assert (floors["primary"].m, floors["all pairs"].m) == (8, 36)


def _render(across: stats.AcrossCells, reference: str = "ref") -> str:
    within = pd.DataFrame(columns=stats.WITHIN_COLUMNS)
    report = stats.StatsReport("toy", "last", reference, 0.05, within, across, [])
    return stats.render_markdown(report)


def test_report_prints_both_floors_and_the_unreachable_warning():
    text = _render(stats.across_cells(nine_by_ten(), alpha=0.05, reference="ref"))
    assert "### Primary: each method vs ref" in text and "### Secondary: all pairs" in text
    assert "primary family (8 tests, N = 10 cells): exact Wilcoxon floor 2/2^10 = 0.00195 × Holm multiplier 8 " \
           "= 0.0156." in text
    assert "all pairs family (36 tests, N = 10 cells): exact Wilcoxon floor 2/2^10 = 0.00195 × Holm multiplier " \
           "36 = 0.0703. No pair in this family can be significant at N = 10" in text
    assert text.count("No pair in this family can be significant") == 1
    tex = stats.render_latex(stats.StatsReport("toy", "last", "ref", 0.05, pd.DataFrame(columns=stats.WITHIN_COLUMNS),
                                               stats.across_cells(nine_by_ten(), 0.05, "ref"), []))
    assert "Primary family" in tex and "Secondary family" in tex


def test_primary_family_skipped_when_the_reference_has_no_complete_cell():
    matrix = nine_by_ten()
    matrix["ref"] = np.nan
    across = stats.across_cells(matrix, reference="ref")
    assert across.versus is None and "no complete cell" in across.versus_skipped
    assert "Skipped:" in _render(across)


# --------------------------------------------------------------------------- certain differences (item 2)


@pytest.mark.parametrize(("gain", "side"), [(2.0, "higher"), (-1.25, "lower")])
def test_constant_gain_is_a_certain_difference(gain, side):
    reference = seeds({0: 78.0, 1: 79.5, 2: 81.0})
    method = seeds({s: v + gain for s, v in zip(range(3), [78.0, 79.5, 81.0])})
    comp = stats.compare_seeds(method, reference)
    assert comp.test == stats.CONSTANT
    assert comp.diff == pytest.approx(gain)
    assert (comp.ci_low, comp.ci_high) == pytest.approx((gain, gain))
    assert math.isnan(comp.p)
    assert side in comp.note and "degenerate" in comp.note
    # seeds in a different order still pair up
    assert stats.compare_seeds(method.iloc[::-1], reference).test == stats.CONSTANT


def test_unpaired_constant_samples_with_different_means_are_certain_too():
    comp = stats.compare_seeds(seeds({0: 70.0, 1: 70.0, 2: 70.0}), seeds({5: 60.0, 6: 60.0, 7: 60.0}))
    assert comp.test == stats.CONSTANT and comp.diff == pytest.approx(10.0) and "unpaired" in comp.note


def test_no_difference_is_still_skipped():
    comp = stats.compare_seeds(seeds({0: 80.0, 1: 81.0, 2: 82.0}), seeds({0: 80.0, 1: 81.0, 2: 82.0}))
    assert comp.test == "skipped" and "no difference" in comp.note and comp.diff == 0.0


def test_constant_gain_in_the_report_and_out_of_the_holm_family(synthetic):
    runs = synthetic.runs
    cell = (runs["imbalance"] == 10) & (runs["noise_rate"] == 0.1)
    ce = runs[cell & (runs["method"] == "ce")].set_index(["data_seed", "seed"])["last_acc"]
    bs = cell & (runs["method"] == "balanced_softmax")
    keys = list(zip(runs.loc[bs, "data_seed"], runs.loc[bs, "seed"]))
    runs.loc[bs, "last_acc"] = [ce[k] + 1.5 for k in keys]
    within = stats.within_cells(synthetic, "last", "ce")
    rows = within[within["cell"] == Cell("cifar10", 10.0, "lt-prior", 0.1)].set_index("method")
    assert rows.loc["balanced_softmax", "test"] == stats.CONSTANT
    assert rows.loc["balanced_softmax", "diff"] == pytest.approx(1.5)
    assert rows.loc["balanced_softmax", "significant"] is None
    # Holm now runs over the two remaining tests only
    raw = rows.loc[["dividemix", "dynamic_loss"], "p"].to_numpy(float)
    assert list(rows.loc[["dividemix", "dynamic_loss"], "p_holm"]) == pytest.approx(
        list(multipletests(raw, method="holm")[1]))
    markdown, _ = stats.write_stats(synthetic, reference="ce")
    line = next(x for x in markdown.splitlines() if "Balanced Softmax" in x and "constant Δ" in x)
    assert "n/a" in line and "certain" in line and "+1.50" in line and "skipped" not in line
    assert "1 certain difference(s)" in markdown


# --------------------------------------------------------------------------- Cliff's δ (item 3)


@pytest.mark.parametrize("seed", range(5))
def test_cliffs_delta_matches_a_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 6, size=rng.integers(3, 9)), rng.integers(0, 6, size=rng.integers(3, 9))  # many ties
    assert stats.cliffs_delta(x, y) == pytest.approx(brute_cliff(x, y))
    assert stats.cliffs_delta(y, x) == pytest.approx(-brute_cliff(x, y))


def test_cliffs_delta_edge_cases():
    assert stats.cliffs_delta([1, 2, 3], [4, 5]) == -1.0
    assert stats.cliffs_delta([2, 2], [2, 2, 2]) == 0.0
    assert math.isnan(stats.cliffs_delta([], [1.0]))
    assert stats.cliffs_delta([0.1 + 0.2], [0.3]) == 0.0  # float noise ties


@pytest.mark.parametrize(("delta", "label"), [(0.0, "negligible"), (0.146, "negligible"), (-0.147, "small"),
                                              (0.329, "small"), (0.33, "medium"), (-0.473, "medium"),
                                              (0.474, "large"), (-1.0, "large"), (math.nan, "")])
def test_cliff_magnitude_bounds(delta, label):
    assert stats.cliff_magnitude(delta) == label


def test_cliffs_delta_in_both_families_and_within_cells(synthetic):
    matrix = nine_by_ten(3)
    across = stats.across_cells(matrix, reference="ref")
    for _, row in across.versus.iterrows():
        expected = brute_cliff(matrix[row["method"]].round(9), matrix["ref"].round(9))
        assert row["cliffs_delta"] == pytest.approx(expected)
        assert row["magnitude"] == stats.cliff_magnitude(expected)
    for _, row in across.pairs.iterrows():
        assert row["cliffs_delta"] == pytest.approx(brute_cliff(matrix[row["method_a"]], matrix[row["method_b"]]))
    # within cells: method runs against reference runs, only with ≥3 runs a side
    within = stats.within_cells(synthetic, "last", "ce")
    scores = synthetic.scores("last")
    for _, row in within[within["test"] != "reference"].iterrows():
        c = row["cell"]
        mask = np.ones(len(scores), dtype=bool)
        for key in ("dataset", "imbalance", "noise", "noise_rate"):
            mask &= scores[key].to_numpy() == getattr(c, key)
        mine = scores[mask & (scores["method"] == row["method"])]["value"].to_numpy()
        ref = scores[mask & (scores["method"] == "ce")]["value"].to_numpy()
        if len(mine) >= 3 and len(ref) >= 3:
            assert row["cliffs_delta"] == pytest.approx(brute_cliff(mine, ref))
        else:
            assert math.isnan(row["cliffs_delta"]) and row["magnitude"] == ""


# --------------------------------------------------------------------------- CD diagram groups (item 4)


def test_cd_diagram_uses_the_all_pairs_wilcoxon_holm_matrix(synthetic):
    ranks, pvalues, cd, n_complete, n_cells = plots.critical_difference_data(synthetic, "last")
    full = synthetic.cell_matrix("last").dropna().round(9)
    methods = list(full.columns)
    pairs = list(itertools.combinations(methods, 2))
    raw = [st.wilcoxon(full[a], full[b], zero_method="zsplit").pvalue for a, b in pairs]
    adjusted = multipletests(raw, method="holm")[1]
    for (a, b), p in zip(pairs, adjusted):
        assert pvalues.loc[a, b] == pytest.approx(p) and pvalues.loc[b, a] == pytest.approx(p)
    assert all(pvalues.loc[m, m] == 1.0 for m in methods)
    # not Nemenyi's matrix: on this fixture Nemenyi separates CE from Dynamic Loss, Wilcoxon-Holm cannot
    _, nemenyi_p, _ = stats.nemenyi(synthetic.cell_matrix("last"))
    assert nemenyi_p.loc["ce", "dynamic_loss"] < 0.05 <= pvalues.loc["ce", "dynamic_loss"]
    assert cd == pytest.approx(stats.critical_difference(4, 3)) and (n_complete, n_cells) == (3, 4)


def test_cd_diagram_caption_names_the_test(synthetic):
    fig = plots.plot_critical_difference(synthetic, "last")
    try:
        caption = plots.figure_caption(fig)
        assert "Wilcoxon signed-rank test over cells, Holm-corrected over all 6 pairs" in caption
        assert "Nemenyi critical difference CD" in caption and "reference only" in caption
        assert len(fig.axes[0].get_title()) <= 60  # the title stays short; the caption explains
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- stratified bootstrap (item 5)


def numpy_stratified_bootstrap(per_cell, alpha=0.05, n_resamples=20000, seed=123):
    """Hand-rolled reference: resample each cell's seeds, average the cell means, take percentiles."""
    rng = np.random.default_rng(seed)
    means = np.zeros(n_resamples)
    for values in per_cell:
        v = np.asarray(values, dtype=float)
        means += v[rng.integers(0, v.size, size=(n_resamples, v.size))].mean(axis=1)
    means /= len(per_cell)
    return tuple(np.quantile(means, [alpha / 2, 1 - alpha / 2]))


def test_stratified_bootstrap_agrees_with_a_numpy_resampler():
    per_cell = [[70.1, 71.3, 69.8], [60.0, 62.5, 61.0, 59.2, 63.3], [55.0], [48.2, 50.9, 49.1]]  # one 1-seed cell
    low, high = stats.stratified_bootstrap(per_cell, alpha=0.05)
    ref_low, ref_high = numpy_stratified_bootstrap(per_cell)
    point = np.mean([np.mean(v) for v in per_cell])
    assert low < point < high
    assert (low, high) == pytest.approx((ref_low, ref_high), abs=0.06)  # Monte Carlo error of both resamplers
    assert stats.stratified_bootstrap(per_cell) == (low, high)  # fixed generator seed: reproducible


def test_stratified_bootstrap_degenerate_cases():
    assert stats.stratified_bootstrap([[1.0, 1.0, 1.0], [3.0, 3.0]]) == pytest.approx((2.0, 2.0))
    low, high = stats.stratified_bootstrap([[1.0], [3.0]])
    assert math.isnan(low) and math.isnan(high)


def test_bootstrap_interval_in_the_report(synthetic):
    markdown, paths = stats.write_stats(synthetic, reference="ce")
    assert "Mean 95% CI (bootstrap)" in markdown
    table = pd.read_csv(synthetic.root / "stats" / "last" / "mean_intervals.csv").set_index("method")
    ranks = pd.read_csv(synthetic.root / "stats" / "last" / "ranks.csv").set_index("method")
    assert table["mean"].to_dict() == pytest.approx(ranks["mean"].to_dict(), abs=1e-4)
    assert ((table["ci_low"] <= table["mean"]) & (table["mean"] <= table["ci_high"])).all()
    assert (table["n_cells"] == 3).all()
