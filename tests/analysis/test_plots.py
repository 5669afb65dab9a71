"""analysis.plots on the synthetic results set (tests/analysis/data/make_synthetic.py).

Figures are checked as files (present, non-trivial, right format); the numbers behind them
through the data functions (heatmap differences, Pareto front, timing rule, panel layout).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.results import Cell, Results, load_results
from bench.core.errors import UsageError

DATA = Path(__file__).parent / "data" / "synthetic"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED_STEMS = {"accuracy_vs_noise_last", "accuracy_vs_noise_best", "diff_heatmap_last", "critical_difference_last",
                  "cost_per_iteration", "accuracy_vs_time_last", "training_curves", "diagnostics"}


def kinds_written(paths: list[Path]) -> list[str]:
    """The figure kinds (`plots.KINDS`) the files stand for, in `KINDS` order."""
    stems = [Path(p).stem for p in paths]
    return [kind for kind in plots.KINDS if any(stem.startswith(kind) for stem in stems)]


def _copy(tmp: Path) -> Path:
    root = tmp / "synthetic"
    shutil.copytree(DATA, root)
    return root


@pytest.fixture
def results(tmp_path: Path) -> Results:
    return load_results(_copy(tmp_path))


@pytest.fixture(scope="module")
def png_report(tmp_path_factory: pytest.TempPathFactory) -> plots.PlotReport:
    """One full png run shared by the tests that only read what it wrote."""
    return plots.make_plots(load_results(_copy(tmp_path_factory.mktemp("png"))), fmt="png")


def _keep(results: Results, mask: pd.Series) -> Results:
    runs = results.runs[mask].reset_index(drop=True)
    return Results(root=results.root, runs=runs, epochs=results.epochs[results.epochs["run_id"].isin(runs["run_id"])])


# --- files ------------------------------------------------------------------------------------


def test_write_plots_writes_a_png_for_every_kind(png_report: plots.PlotReport) -> None:
    assert png_report.skipped == {}
    assert {p.stem for p in png_report.paths} == EXPECTED_STEMS
    for path in png_report.paths:
        assert path.parent.name == "plots" and path.suffix == ".png"
        assert path.stat().st_size > 5_000, path
        assert path.read_bytes()[:8] == PNG_MAGIC, path
    assert kinds_written(png_report.paths) == list(plots.KINDS) == png_report.kinds()
    assert plt.get_fignums() == []  # every figure closed


def test_write_plots_pdf(results: Results) -> None:
    paths = plots.write_plots(results, fmt="pdf")
    assert {p.stem for p in paths} == EXPECTED_STEMS
    for path in paths:
        assert path.suffix == ".pdf" and path.stat().st_size > 5_000
        assert path.read_bytes()[:5] == b"%PDF-", path


def test_bad_format_is_a_usage_error(results: Results) -> None:
    with pytest.raises(UsageError, match="format 'svg'"):
        plots.write_plots(results, fmt="svg")
    assert not (results.root / "plots").exists()


def test_bad_metric_and_unknown_cell_are_usage_errors(results: Results) -> None:
    with pytest.raises(UsageError, match="metric"):
        plots.write_plots(results, metric="top1")
    with pytest.raises(UsageError, match="no cell"):
        plots.write_plots(results, cell=Cell("cifar100", 10.0, "sym", 0.2))


def test_no_finished_run_is_a_usage_error(results: Results) -> None:
    failed = Results(results.root, results.runs.assign(status="failed"), results.epochs)
    with pytest.raises(UsageError, match="no finished run"):
        plots.write_plots(failed)


# --- critical difference ----------------------------------------------------------------------


def test_critical_difference_skipped_with_one_complete_cell(results: Results,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropping dynamic_loss from ρ=10 λ=0.3 and ρ=100 λ=0.3 leaves only ρ=10 λ=0.1 complete."""
    runs = results.runs
    one = _keep(results, ~((runs["method"] == "dynamic_loss") & (runs["noise_rate"] == 0.3)))
    with pytest.raises(plots.SkipPlot, match="1 complete cell"):
        plots.plot_critical_difference(one)
    stale = one.root / "plots" / "critical_difference_last.png"
    stale.parent.mkdir()
    stale.write_bytes(b"from an earlier call")
    jobs = plots._jobs  # draw only the CD diagram and the heatmap, to keep the test fast
    monkeypatch.setattr(plots, "_jobs", lambda *args: [j for j in jobs(*args) if j[0] in {"critical_difference",
                                                                                            "diff_heatmap"}])
    report = plots.make_plots(one)
    assert list(report.skipped) == ["critical_difference"] and report.kinds() == ["diff_heatmap"]
    assert not stale.exists()  # a figure these results no longer support is removed
    assert plt.get_fignums() == []


def test_critical_difference_data_uses_complete_cells(results: Results) -> None:
    ranks, pvalues, cd, n_complete, n_cells = plots.critical_difference_data(results, "last")
    assert (n_complete, n_cells) == (3, 4)  # dynamic_loss never ran ρ=100 λ=0.1
    assert list(ranks.index) == ["ce", "balanced_softmax", "dividemix", "dynamic_loss"]
    assert ranks.sum() == pytest.approx(1 + 2 + 3 + 4) and cd > 0 and pvalues.shape == (4, 4)


# --- heatmap ----------------------------------------------------------------------------------


def test_heatmap_differences_equal_cell_matrix_differences(results: Results) -> None:
    diff, base, reference = plots.difference_to_reference(results, "best")
    matrix = results.cell_matrix("best")
    assert reference == "ce" and list(diff.columns) == ["balanced_softmax", "dividemix", "dynamic_loss"]
    pd.testing.assert_series_equal(base, matrix["ce"])
    for method in diff.columns:
        np.testing.assert_allclose(diff[method], matrix[method] - matrix["ce"])
    assert np.isnan(diff.loc[Cell("cifar10", 100.0, "lt-prior", 0.1), "dynamic_loss"])  # not run
    assert diff.loc[Cell("cifar10", 10.0, "lt-prior", 0.1), "balanced_softmax"] == pytest.approx(
        matrix.loc[Cell("cifar10", 10.0, "lt-prior", 0.1), "balanced_softmax"] - matrix.loc[
            Cell("cifar10", 10.0, "lt-prior", 0.1), "ce"])


def test_heatmap_reference_without_ce_is_first_method(results: Results) -> None:
    no_ce = _keep(results, results.runs["method"] != "ce")
    diff, _, reference = plots.difference_to_reference(no_ce, "last")
    assert reference == "balanced_softmax" and "balanced_softmax" not in diff.columns
    fig = plots.plot_difference_heatmap(no_ce)
    assert "reference is Balanced Softmax" in fig.axes[0].get_title()
    plt.close(fig)


# --- cost -------------------------------------------------------------------------------------


def test_pareto_front_hand_example() -> None:
    points = pd.DataFrame({"time": [1, 2, 3, 2, 4, 1, 5, np.nan], "accuracy": [50, 60, 55, 40, 70, 45, 70, 99]},
                          index=list("ABCDEFGH"))
    front = plots.pareto_front(points)
    # C is beaten by B, D by B, F by A (as fast, less accurate), G by E (as accurate, slower); H has no time
    assert list(front.index) == ["A", "B", "E"]


def test_timed_runs_prefer_solo_runs() -> None:
    runs = pd.DataFrame({"dataset": "d", "status": "done", "method": ["a", "a", "b", "b"],
                         "colocated": [1, 4, 2, 3], "sec_per_iter": [1.0, 9.0, 2.0, 4.0]})
    timed, packed = plots.timed_runs(runs)
    assert sorted(timed["sec_per_iter"]) == [1.0, 2.0, 4.0]  # a's packed run dropped, b has no solo run
    assert packed == {("d", "b")}


def test_iteration_cost_ratio_to_ce(results: Results) -> None:
    table = plots.iteration_cost(results).set_index("method")
    assert table.loc["ce", "ratio"] == pytest.approx(1.0) and not table["packed"].any()
    assert table.loc["dynamic_loss", "ratio"] == pytest.approx(
        table.loc["dynamic_loss", "median"] / table.loc["ce", "median"])
    assert table.loc["dividemix", "n"] == 12 - 3  # three failed runs have no timing


# --- layout of the accuracy-vs-noise panels, cells, diagnostics -------------------------------


def test_clean_cells_sit_at_rate_zero_of_the_noise_panel(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    runs = pd.read_csv(root / "runs.csv")
    runs.loc[(runs["imbalance"] == 10) & (runs["noise_rate"] == 0.1), "noise_rate"] = 0.0  # a clean cell
    runs.to_csv(root / "runs.csv", index=False)
    data = plots.noise_curve_data(load_results(root), "last")
    rho10 = data[data["imbalance"] == 10.0]
    assert set(rho10["noise"]) == {"lt-prior"} and sorted(set(rho10["noise_rate"])) == [0.0, 0.3]
    ce = rho10[(rho10["method"] == "ce") & (rho10["noise_rate"] == 0.0)].iloc[0]
    expected = runs[(runs["method"] == "ce") & (runs["imbalance"] == 10) & (runs["noise_rate"] == 0.0)]["last_acc"]
    assert ce["n"] == 3 and ce["mean"] == pytest.approx(expected.mean())


def test_default_cell_has_the_most_finished_runs(results: Results) -> None:
    assert plots.default_cell(results) == Cell("cifar10", 10.0, "lt-prior", 0.1)


def test_curve_data_is_the_seed_mean(results: Results) -> None:
    cell = Cell("cifar10", 100.0, "lt-prior", 0.1)
    curve = plots.curve_data(results, cell)
    ce_last = curve[(curve["method"] == "ce") & (curve["epoch"] == 5)].iloc[0]
    assert ce_last["n"] == 3 and ce_last["mean"] == pytest.approx(62.0)  # the tie cell: 62.5, 61.5, 62.0


def test_diagnostic_panels_pair_nets_and_skip_empty_columns() -> None:
    epochs = pd.DataFrame({"run_id": ["r"], "epoch": [0], "test_acc": [1.0], "split_precision_a": [0.9],
                           "split_precision_b": [0.8], "labeled_a": [5.0], "lc_label_acc": [70.0],
                           "relabel_acc": [np.nan]})
    assert plots.diagnostic_panels(epochs) == {"lc_label_acc": ["lc_label_acc"],
                                               "split_precision": ["split_precision_a", "split_precision_b"],
                                               "labeled_a": ["labeled_a"]}


def test_diagnostics_skipped_without_any(results: Results) -> None:
    bare = Results(results.root, results.runs, results.epochs.drop(columns=["lc_label_acc", "split_precision_a"]))
    with pytest.raises(plots.SkipPlot, match="diagnostic"):
        plots.plot_diagnostics(bare)
    assert plt.get_fignums() == []
