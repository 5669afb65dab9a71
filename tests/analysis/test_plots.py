"""analysis.plots on the synthetic results set (tests/analysis/data/make_synthetic.py).

Figures are checked as files (present, non-trivial, right format); the numbers behind them
through the data functions (heatmap differences, Pareto front, timing rule, panel layout).
"""
from __future__ import annotations

import re
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
    stale_caption = stale.with_name("critical_difference_last.caption.txt")
    stale_caption.write_text("from an earlier call")
    jobs = plots._jobs  # draw only the CD diagram and the heatmap, to keep the test fast
    monkeypatch.setattr(plots, "_jobs", lambda *args: [j for j in jobs(*args) if j[0] in {"critical_difference",
                                                                                            "diff_heatmap"}])
    report = plots.make_plots(one)
    assert list(report.skipped) == ["critical_difference"] and report.kinds() == ["diff_heatmap"]
    assert not stale.exists() and not stale_caption.exists()  # a figure these results no longer support is removed
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
    matrix = matrix.loc[plots.heatmap_order(matrix.index)]
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
    assert fig.axes[0].get_title() == "CIFAR-10: Last acc. − Balanced Softmax"
    assert "the reference is Balanced Softmax" in plots.figure_caption(fig)
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


# --- paper-ready figures: names, titles, captions, marks, time axes, many methods -------------

#: raw ids that must never reach a figure (dataset, noise model, parameter and method names)
RAW_IDS = ("cifar10", "lt-prior", "noise_rate", "imbalance", "balanced_softmax", "dynamic_loss", "dividemix_bs",
           "mwnet")
#: the reference's per-seed level offsets, and a zero-mean per-seed wobble (no systematic difference)
JITTER = (0.4, -0.3, 0.1, -0.5, 0.3)
WOBBLE = (0.5, -0.6, 0.4, -0.3, 0.0)
CLEAN, LT2, LT4 = Cell("cifar10", 10.0, "none", 0.0), Cell("cifar10", 10.0, "lt-prior", 0.2), \
    Cell("cifar10", 10.0, "lt-prior", 0.4)
TIME_LABEL = r"\d+(\.\d+)? (µs|ms|s|min|h)"


def made_up(tmp: Path, methods: list[str], cells: list[Cell], value, seeds: int = 5) -> Results:
    """A results folder of `methods` × `cells` × `seeds` finished runs; `value(method_index, cell, seed)` is
    a run's last accuracy. Method i takes 10·(i+1)² ms per iteration and seconds in all (spread over decades)."""
    template = pd.read_csv(DATA / "runs.csv", nrows=1).iloc[0].to_dict()
    runs, epochs = [], []
    for i, method in enumerate(methods):
        for c, cell in enumerate(cells):
            for seed in range(seeds):
                acc = round(value(i, cell, seed), 6)
                run_id = f"{method}-{c}-{seed}"
                runs.append({**template, "run_id": run_id, "method": method, "dataset": cell.dataset,
                             "imbalance": cell.imbalance, "noise": cell.noise, "noise_rate": cell.noise_rate,
                             "data_seed": seed, "seed": seed, "last_acc": acc, "best_acc": acc + 1.0, "last5_acc": acc,
                             "best_epoch": 2.0, "sec_per_iter": 0.01 * (i + 1) ** 2, "sec_total": 10.0 * (i + 1) ** 2})
                epochs += [{"run_id": run_id, "epoch": e, "test_acc": acc - 3 + e, "train_loss": 1.0, "lr": 0.1,
                            "sec_per_iter": 0.01, "sec_epoch": 1.0} for e in range(4)]
    root = tmp / "made_up"
    root.mkdir()
    pd.DataFrame(runs).to_csv(root / "runs.csv", index=False)
    pd.DataFrame(epochs).to_csv(root / "epochs.csv", index=False)
    return load_results(root)


def planted(i: int, cell: Cell, seed: int) -> float:
    """ce (i=0) is the reference; balanced_softmax (1) beats it by 3 points at λ=0.4 and dividemix (2)
    loses 2 points on the clean cell, both with a small wobble (significant); dividemix is exactly 1
    point better on every seed at λ=0.2 (certain, degenerate test); elsewhere a zero-mean wobble."""
    ref = 70.0 - 30.0 * cell.noise_rate + JITTER[seed]
    if i == 0:
        return ref
    if (i, cell) == (1, LT4):
        return ref + 3.0 + WOBBLE[seed] / 5
    if (i, cell) == (2, CLEAN):
        return ref - 2.0 + WOBBLE[seed] / 5
    if (i, cell) == (2, LT2):
        return ref + 1.0
    return ref + WOBBLE[(seed + i) % 5]


@pytest.fixture
def three(tmp_path: Path) -> Results:
    return made_up(tmp_path, ["ce", "balanced_softmax", "dividemix"], [LT4, CLEAN, LT2], planted)


@pytest.fixture
def twelve(tmp_path: Path) -> Results:
    from methods import METHODS

    return made_up(tmp_path, METHODS.names(), [CLEAN, LT2, LT4],
                   lambda i, cell, seed: 60.0 + i - 20 * cell.noise_rate + JITTER[seed], seeds=3)


def texts(fig) -> list[str]:
    """Every non-empty text a drawn figure shows: titles, labels, tick labels, legends, annotations."""
    fig.canvas.draw()
    return [t.get_text() for t in fig.findobj(plt.Text) if t.get_visible() and t.get_text()]


def titles(fig) -> list[str]:
    found = [ax.get_title() for ax in fig.axes if ax.get_title()]
    return found + ([fig._suptitle.get_text()] if fig._suptitle is not None else [])


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_every_figure_shows_readable_names_and_short_titles(results: Results) -> None:
    cell = Cell("cifar10", 10.0, "lt-prior", 0.1)
    figures = {"noise": plots.plot_accuracy_vs_noise(results), "heatmap": plots.plot_difference_heatmap(results),
               "cd": plots.plot_critical_difference(results), "cost": plots.plot_iteration_cost(results),
               "time": plots.plot_accuracy_vs_time(results, cell=cell),
               "curves": plots.plot_training_curves(results, cell),
               "diagnostics": plots.plot_diagnostics(results, cell)}
    for name, fig in figures.items():
        shown = texts(fig)
        joined = "\n".join(shown)
        assert not [raw for raw in RAW_IDS if raw in joined], (name, shown)
        assert "CIFAR-10" in joined, name
        assert titles(fig) and all(len(t) <= 60 and "\n" not in t for t in titles(fig)), (name, titles(fig))
        assert plots.figure_caption(fig), name  # the explanation the short title leaves out
        plt.close(fig)
    noise = "\n".join(texts(figures["noise"]))
    assert "CIFAR-10, ρ=10, long-tail prior" in noise and "noise rate λ" in noise
    assert "Balanced Softmax" in noise and "Dynamic Loss" in noise
    assert titles(figures["time"]) == ["CIFAR-10, ρ=10, long-tail prior λ=0.1"]
    assert "ρ=100, long-tail prior λ=0.3  [48.2]" in texts(figures["heatmap"])


def test_style_names_every_registered_dataset_and_noise_model() -> None:
    from analysis import style
    from noisytail_datasets.catalog import DATASETS
    from noisytail_datasets.noise import NOISE_MODELS

    assert all(style.noise_title(n) != n for n in NOISE_MODELS.names()), "a noise model without a readable name"
    assert all(style.dataset_title(d) != d for d in DATASETS.names() if d != "digits")
    assert style.cell_title(Cell("fashion-mnist", 100.0, "asym", 0.4)) == "Fashion-MNIST, ρ=100, asymmetric λ=0.4"
    assert style.cell_title(Cell("cifar100", 10.0, "none", 0.0)) == "CIFAR-100, ρ=10, clean"


def test_heatmap_lists_clean_cells_first_and_marks_planted_differences(three: Results) -> None:
    fig = plots.plot_difference_heatmap(three)
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert [r.split("  [")[0] for r in rows] == ["ρ=10, clean", "ρ=10, long-tail prior λ=0.2",
                                                 "ρ=10, long-tail prior λ=0.4"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Balanced Softmax", "DivideMix"]
    annotated = {(int(t.get_position()[1]), int(t.get_position()[0])): t.get_text() for t in ax.texts}
    marks = {key: text[-1] for key, text in annotated.items() if text[-1] in "*†"}
    # rows: clean, λ=0.2, λ=0.4; columns: Balanced Softmax, DivideMix
    assert marks == {(2, 0): "*", (0, 1): "*", (1, 1): "†"}, annotated
    assert annotated[(1, 1)] == "+1.0†" and annotated[(2, 0)].startswith("+3.")
    caption = plots.figure_caption(fig)
    assert "paired t-test over seeds" in caption and "Holm" in caption and "α = 0.05" in caption
    plt.close(fig)


def _time_axis_labels(ax) -> list[str]:
    low, high = sorted(ax.get_xlim())
    return [label.get_text() for tick, label in zip(ax.get_xticks(), ax.get_xticklabels()) if low <= tick <= high]


def test_log_time_axes_have_few_readable_labels_with_units(twelve: Results) -> None:
    cost = plots.plot_iteration_cost(twelve)
    time = plots.plot_accuracy_vs_time(twelve, cell=LT2)
    for fig in (cost, time):
        fig.canvas.draw()
        ax = fig.axes[0]
        assert ax.get_xscale() == "log"
        labels = _time_axis_labels(ax)
        assert 2 <= len(labels) <= plots.MAX_TIME_TICKS, labels
        assert all(re.fullmatch(TIME_LABEL, label) for label in labels), labels
        assert not any(label.get_text() for label in ax.xaxis.get_minorticklabels())
        boxes = [label.get_window_extent() for label in ax.get_xticklabels() if label.get_text()]
        assert not any(_overlap(a, b) for a, b in zip(boxes, boxes[1:]))
        plt.close(fig)
    assert plots.seconds_label(0.02) == "20 ms" and plots.seconds_label(120) == "2 min"


def test_accuracy_vs_noise_with_twelve_methods_facets_by_family(twelve: Results) -> None:
    from methods import METHODS

    fig = plots.plot_accuracy_vs_noise(twelve)
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_visible()]
    families = {METHODS.get(m).family for m in METHODS.names() if m != "ce"}
    assert len(panels) == len(families) >= 4
    drawn = set()
    for ax in panels:
        lines = [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]
        assert 2 <= len(lines) <= plots.MAX_LINES and "CE" in lines, lines
        drawn |= set(lines)
    assert drawn == {METHODS.display_name(m) for m in METHODS.names()}
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [METHODS.display_name(m) for m in METHODS.names()]
    box = legend.get_window_extent()
    assert not any(_overlap(box, ax.get_tightbbox()) for ax in panels)
    plt.close(fig)


def test_make_plots_writes_a_caption_beside_every_figure(png_report: plots.PlotReport) -> None:
    assert png_report.captions.keys() == png_report.written.keys()
    for figure, caption in zip(png_report.paths, [c for cs in png_report.captions.values() for c in cs]):
        assert caption.name == figure.stem + ".caption.txt" and caption.parent == figure.parent
        assert len(caption.read_text(encoding="utf-8")) > 80
