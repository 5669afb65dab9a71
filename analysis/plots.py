"""Figures from a results store, written under `<results>/plots/` by `write_plots`.

Kinds (file stems in brackets, `{m}` the metric):
- accuracy against noise rate, one panel per dataset × ρ × noise model, clean cells at rate 0
  [accuracy_vs_noise_last, _best, and _{m} for another metric];
- heatmap of each method's difference to CE per cell [diff_heatmap_{m}];
- critical-difference diagram over the complete cells (bars: all-pairs Wilcoxon–Holm) [critical_difference_{m}];
- median seconds per iteration per method, ratio to CE [cost_per_iteration];
- accuracy against total training time with the Pareto front, one cell [accuracy_vs_time_{m}];
- test-accuracy curves per epoch, one cell [training_curves];
- per-epoch method diagnostics, one cell [diagnostics].

Conventions: bands and error bars are mean ± 1 standard deviation over seeds (ddof = 1), absent
where only one seed finished; only finished runs are drawn. Methods keep the order, names and
colours of `analysis.style`. Timings come from solo runs (`colocated` ≤ 1) of a dataset and method
where it has any, else from its packed runs, which the figure flags (see `timed_runs`). Each figure function returns a Figure (closed again if drawing
fails); `write_plots` saves and closes it. A figure that these results cannot support raises
`SkipPlot` with the reason, and `write_plots` skips it (logged, and listed by `make_plots`).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")  # files only, never a window; must precede the pyplot import below

import matplotlib.pyplot as plt
import scikit_posthocs as sp
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from analysis import stats
from analysis.results import CELL_KEYS, METRIC_LABELS, Cell, Results, in_cell, metric_column, refuse_backbone_sweep
from analysis.style import baseline_method, display_name, method_markers, method_order, method_palette
from bench.core.errors import UsageError

log = logging.getLogger(__name__)

FORMATS = ("png", "pdf")
DPI = 200
COLUMN_WIDTH = 3.3  # inches: one column of a two-column paper
TEXT_WIDTH = 7.0  # inches: full text width, for multi-panel figures
BAND = "mean ± 1 std over seeds"

#: figure kinds, in the order `write_plots` draws them; a file's stem starts with its kind
KINDS = ("accuracy_vs_noise", "diff_heatmap", "critical_difference", "cost_per_iteration",
         "accuracy_vs_time", "training_curves", "diagnostics")

#: epochs-table columns every method writes; any other numeric column is a method diagnostic
STANDARD_EPOCH_COLUMNS = frozenset({"run_id", "epoch", "test_acc", "train_loss", "lr", "sec_per_iter",
                                    "sec_epoch", "samples"})

#: readable panel titles of known diagnostics (an `_a`/`_b` pair shares one panel: nets A and B)
DIAGNOSTIC_LABELS = {
    "lc_label_acc": "corrected-label acc. (%)",
    "lc_weight_mean": "corrector mean weight",
    "meta_set_size": "meta-set size",
    "split_precision": "GMM clean-split precision (%)",
    "split_recall": "GMM clean-split recall (%)",
    "labeled": "GMM labelled samples",
    "test_acc": "per-network test acc. (%)",
    "famus_active_frac": "FaMUS active-layer fraction",
    "famus_depth_frac": "FaMUS active-depth fraction",
    "relabel_acc": "relabel acc. (%)",
    "dict_purity": "dictionary purity (%)",
    "zero_weight_pct": "zero-weight samples (%)",
    "meta_loss": "meta loss",
}

_RC = {
    **sns.axes_style("ticks"),
    "font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5, "legend.fontsize": 6.5, "legend.title_fontsize": 7, "figure.titlesize": 7.5,
    "axes.linewidth": 0.6, "lines.linewidth": 1.0, "lines.markersize": 3.0, "patch.linewidth": 0.5,
    "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
    "legend.frameon": False, "legend.handlelength": 1.6, "legend.columnspacing": 1.0,
    "pdf.fonttype": 42, "ps.fonttype": 42, "savefig.dpi": DPI,
}


class SkipPlot(Exception):
    """These results cannot support a figure; the message says why."""


@dataclass
class PlotReport:
    """What `make_plots` wrote (kind -> files) and skipped (kind -> reason)."""

    written: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return [path for paths in self.written.values() for path in paths]

    def kinds(self) -> list[str]:
        return list(self.written)


# ---------------------------------------------------------------------------------------------
# shared helpers


@contextmanager
def _style():
    with plt.rc_context(_RC):
        yield


@contextmanager
def _drawing(fig: Figure, own: bool = True):
    """Draw into `fig` in the house style; if drawing fails, close it (when `own`), so nothing leaks."""
    try:
        with _style():
            yield fig
    except BaseException:
        if own:
            plt.close(fig)
        raise


def _new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kw) -> tuple[Figure, np.ndarray]:
    with _style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained", **kw)
    return fig, axes


def _axes_figure(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    """The given axes and its figure, or a new single-axes figure of the given size."""
    if ax is not None:
        return ax.get_figure(), ax
    fig, axes = _new_figure(width, height)
    return fig, axes[0, 0]


def save_figure(fig: Figure, path: Path) -> Path:
    """Save `fig` (png at DPI or pdf, from the suffix) and close it."""
    try:
        with _style():
            fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.03)
    finally:
        plt.close(fig)
    return path


def _seed_stats(frame: pd.DataFrame, keys: list[str], value: str = "value") -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for one seed) and n of `value` per group of `keys`."""
    return frame.groupby(keys, sort=False)[value].agg(mean="mean", std="std", n="count").reset_index()


def _reference(methods: Iterable[str]) -> str:
    """The registry's baseline if present, else the first method in listing order."""
    ordered = method_order(methods)
    return baseline_method() if baseline_method() in ordered else ordered[0]


def _n_range(n: pd.Series) -> str:
    low, high = int(n.min()), int(n.max())
    return f"n={low}" if low == high else f"n={low}–{high}"


def _method_legend(fig: Figure, methods: list[str], extra: list[Line2D] | None = None, ncol: int = 3,
                   ax: Axes | None = None) -> None:
    """The methods' legend, in listing order, off the data: below our own figure's panels, or to
    the right of `ax` when the caller handed in the axes (a figure of theirs)."""
    palette, markers = method_palette(methods), method_markers(methods)
    handles = [Line2D([], [], color=palette[m], marker=markers[m], label=display_name(m)) for m in methods]
    handles += extra or []
    if ax is None and isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.legend(handles=handles, loc="outside lower center", ncol=min(ncol, len(handles)))
    else:
        (ax or fig.axes[0]).legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1))


def _integer_epochs(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _plain_log_axis(axis) -> None:
    """Log-scale ticks at 1, 2, 5 × 10^k, labelled as plain numbers; minor ticks unlabelled."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _draw_band(ax: Axes, x: np.ndarray, mean: np.ndarray, std: np.ndarray, colour) -> None:
    """Shade mean ± std; a single point gets an error bar instead."""
    if len(x) == 1:
        if not np.isnan(std[0]):
            ax.errorbar(x, mean, yerr=std, color=colour, capsize=2, lw=0.8)
        return
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15, lw=0)


# ---------------------------------------------------------------------------------------------
# 1. accuracy against noise rate


def noise_curve_data(results: Results, metric: str) -> pd.DataFrame:
    """Seed mean/std/n of `metric` per method and cell, laid out for the accuracy-vs-noise panels.

    Columns: dataset, imbalance, noise (the panel's noise model), noise_rate, method, mean, std, n.
    A clean cell sits at rate 0 of every noise model's panel of its dataset and ρ (a panel
    "none" when that dataset and ρ have no noisy cell).
    """
    scores = results.scores(metric)
    if scores.empty:
        raise SkipPlot(f"no finished run has a {metric} accuracy")
    table = _seed_stats(scores, ["method", *CELL_KEYS])
    noisy, clean = table[table["noise"] != "none"], table[table["noise"] == "none"]
    models = noisy.groupby(["dataset", "imbalance"])["noise"].unique().to_dict()
    parts = [noisy]
    for key, group in clean.groupby(["dataset", "imbalance"]):
        parts += [group.assign(noise=model) for model in models.get(key, ["none"])]
    return pd.concat(parts, ignore_index=True).sort_values([*CELL_KEYS, "method"], ignore_index=True)


def _panel_title(dataset: str, imbalance: float, noise: str) -> str:
    return f"{dataset} ρ={imbalance:g} · {'clean' if noise == 'none' else noise}"


def plot_accuracy_vs_noise(results: Results, metric: str = "last") -> Figure:
    """Accuracy against noise rate: one panel per dataset × ρ × noise model, one line per method."""
    data = noise_curve_data(results, metric)
    panels = list(data.groupby(["dataset", "imbalance", "noise"], sort=True).groups)
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    methods = method_order(data["method"])
    width = COLUMN_WIDTH if ncols <= 2 else TEXT_WIDTH
    legend_rows = math.ceil(len(methods) / (3 if width == COLUMN_WIDTH else 6))
    fig, axes = _new_figure(width, 1.6 * nrows + 0.14 * legend_rows + 0.3, nrows, ncols)
    palette, markers = method_palette(methods), method_markers(methods)
    with _drawing(fig):
        for ax, panel in zip(axes.flat, panels):
            rows = data[(data["dataset"] == panel[0]) & (data["imbalance"] == panel[1]) & (data["noise"] == panel[2])]
            for method in methods:
                line = rows[rows["method"] == method].sort_values("noise_rate")
                if line.empty:
                    continue
                x, mean, std = (line[c].to_numpy(float) for c in ("noise_rate", "mean", "std"))
                ax.plot(x, mean, marker=markers[method], color=palette[method], label=display_name(method))
                _draw_band(ax, x, mean, std, palette[method])
            ax.set_xticks(sorted(rows["noise_rate"].unique()))
            ax.set_title(_panel_title(*panel))
            ax.set_xlabel("noise rate")
            ax.set_ylabel(f"{METRIC_LABELS[metric]} acc. (%)")
            ax.grid(axis="y", lw=0.3, alpha=0.5)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        sns.despine(fig)
        fig.suptitle(f"{METRIC_LABELS[metric]} test accuracy vs noise rate\nband: {BAND} ({_n_range(data['n'])})")
        _method_legend(fig, methods, ncol=3 if width == COLUMN_WIDTH else 6)
    return fig


# ---------------------------------------------------------------------------------------------
# 2. difference to CE


def difference_to_reference(results: Results, metric: str) -> tuple[pd.DataFrame, pd.Series, str]:
    """Seed-mean `metric` minus the reference method's, per cell (rows) and method (columns).

    The reference is CE, or the first method in listing order when CE has no finished run; its
    own (all-zero) column is left out. Returns (differences, the reference's values, its name).
    """
    matrix = results.cell_matrix(metric)
    if matrix.shape[1] < 2:
        raise SkipPlot("needs finished runs of at least two methods")
    reference = _reference(matrix.columns)
    return matrix.drop(columns=reference).sub(matrix[reference], axis=0), matrix[reference], reference


def plot_difference_heatmap(results: Results, metric: str = "last", ax: Axes | None = None) -> Figure:
    """Heatmap of each method's seed-mean difference to CE per cell, annotated, centred at 0."""
    diff, base, reference = difference_to_reference(results, metric)
    ref_name = display_name(reference)
    frame = diff.copy()
    frame.index = [f"{cell.label()}  [{'–' if math.isnan(v) else f'{v:.1f}'}]" for cell, v in zip(diff.index, base)]
    frame.columns = [display_name(m) for m in diff.columns]
    label_width = 0.05 * max(len(label) for label in frame.index)  # inches, at 6.5 pt
    width = min(TEXT_WIDTH, max(COLUMN_WIDTH, label_width + 0.45 * frame.shape[1] + 0.8))
    own = ax is None
    fig, ax = _axes_figure(ax, width, 0.2 * len(frame) + 1.5)
    values = diff.to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    with _drawing(fig, own):
        # symmetric limits centre the diverging map at 0 (seaborn's `center` adds nothing here)
        sns.heatmap(frame, ax=ax, cmap="RdBu", vmin=-limit, vmax=limit, mask=frame.isna(), annot=True,
                    fmt="+.1f", annot_kws={"size": 5.5}, linewidths=0.5, linecolor="white",
                    cbar_kws={"label": "Δ accuracy (points)", "shrink": 0.8, "pad": 0.02})
        ax.set_facecolor("0.92")  # cells where a method (or the reference) has no finished run
        ax.tick_params(length=0)
        ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right")
        title = (f"{METRIC_LABELS[metric]} acc. minus {ref_name} (seed means)\n"
                 f"[ ]: {ref_name} acc.; grey: not run or all failed")
        if reference != baseline_method():
            title += f"\n{display_name(baseline_method())} has no finished run: reference is {ref_name}"
        ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------------------------
# 3. critical-difference diagram


def critical_difference_data(results: Results, metric: str, alpha: float = 0.05) -> tuple[pd.Series, pd.DataFrame,
                                                                                          float, int, int]:
    """(average ranks, all-pairs Wilcoxon-Holm p-values, Nemenyi CD, complete cells N, all cells).

    The groups of the diagram come from the test the stats report uses for pairs: Wilcoxon
    signed-rank over the complete cells, Holm-adjusted over all k(k − 1)/2 pairs (the diagram
    needs every pair, so this is the report's secondary, all-pairs family). Nemenyi's CD is kept
    for the reference bar only.
    """
    matrix = results.cell_matrix(metric)
    full, _ = stats.complete_blocks(matrix)
    if matrix.shape[1] < 2:
        raise SkipPlot("needs finished runs of at least two methods")
    if len(full) < 2:
        raise SkipPlot(f"{len(full)} complete cell(s) (every method finished); the tests need at least 2")
    across = stats.across_cells(matrix, alpha)
    pvalues = stats.holm_matrix(across.pairs, across.methods)
    ranks = stats.average_ranks(full)
    return ranks, pvalues, across.cd, len(full), len(matrix)


def plot_critical_difference(results: Results, metric: str = "last", alpha: float = 0.05,
                             ax: Axes | None = None) -> Figure:
    """Critical-difference diagram over the cells where every method finished.

    Bars join methods that the all-pairs Wilcoxon signed-rank + Holm test (the stats report's
    pairwise test) does not separate; the Nemenyi CD is drawn as a scale bar for comparison.
    """
    ranks, pvalues, cd, n_complete, n_cells = critical_difference_data(results, metric, alpha)
    names = {m: display_name(m) for m in ranks.index}
    own = ax is None
    fig, ax = _axes_figure(ax, COLUMN_WIDTH, 1.5)
    with _drawing(fig, own):
        artists = sp.critical_difference_diagram(
            ranks.rename(names), pvalues.rename(index=names, columns=names), alpha=alpha, ax=ax,
            label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}",
            color_palette={names[m]: c for m, c in method_palette(ranks.index).items()},
            label_props={"fontsize": 6.5}, marker_props={"s": 10}, elbow_props={"linewidth": 0.8},
            crossbar_props={"linewidth": 1.5})
        for label in artists["labels"]:
            label.set_color("0.1")  # the light palette shades are unreadable as text; elbows keep the colour
        _draw_cd_bar(ax, cd, len(ranks))
        ax.set_title(f"Average rank of {METRIC_LABELS[metric]} acc. (1 = best); k = {len(ranks)}, N = {n_complete} "
                     f"complete cells of {n_cells}.\nBars join methods not significantly different by Wilcoxon\n"
                     f"signed-rank + Holm over all {len(ranks) * (len(ranks) - 1) // 2} pairs (α = {alpha:g}); "
                     f"Nemenyi\nCD = {cd:.2f} shown for reference only")
        if own:  # height to fit the crossbars and label rows the diagram needed
            low, high = ax.get_ylim()
            fig.set_size_inches(COLUMN_WIDTH, 0.45 + 0.12 * (high - low))
    return fig


def _draw_cd_bar(ax: Axes, cd: float, k: int) -> None:
    """The critical difference as a bar from rank 1, above the rank axis; integer rank ticks."""
    y = 1.8
    ax.plot([1, 1 + cd], [y, y], color="black", lw=1.0, solid_capstyle="butt")
    ax.plot([1, 1], [y - 0.25, y + 0.25], [1 + cd] * 2, [y - 0.25, y + 0.25], color="black", lw=0.8)
    ax.annotate(f"CD = {cd:.2f}", (1 + cd, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=6.5)
    ax.set_xticks(range(1, k + 1, 1 if k <= 8 else 2))
    ax.set_xlim(0.8, max(k, 1 + cd) + 0.2)
    ax.set_ylim(ax.get_ylim()[0], y + 0.6)
    ax.tick_params(axis="x", labelsize=6, pad=1.5)


# ---------------------------------------------------------------------------------------------
# 4. cost


def timed_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """Finished runs to take timings from, and the (dataset, method) pairs timed in packed runs only.

    A run with `colocated` > 1 shared its device with other runs, so its timings are inflated.
    Per dataset and method, only solo runs are used when there are any; otherwise the packed runs
    are used and the pair is returned as packed, for the figure to flag.
    """
    done = runs[runs["status"] == "done"]
    solo = done["colocated"].fillna(1).astype(float) <= 1 if "colocated" in done else pd.Series(True, done.index)
    keep, packed = [], set()
    for key, group in done.groupby(["dataset", "method"], sort=False):
        alone = group[solo.loc[group.index]]
        if alone.empty:
            packed.add(key)
        keep.append(group if alone.empty else alone)
    return (pd.concat(keep) if keep else done), packed


def iteration_cost(results: Results) -> pd.DataFrame:
    """Median seconds per iteration per dataset and method, with n, ratio to CE and a packed flag.

    The ratio is to CE of the same dataset (else the first method in listing order).
    """
    runs, packed = timed_runs(results.runs)
    runs = runs.dropna(subset=["sec_per_iter"])
    if runs.empty:
        raise SkipPlot("no finished run records seconds per iteration")
    table = runs.groupby(["dataset", "method"])["sec_per_iter"].agg(median="median", n="count").reset_index()
    table["packed"] = [(d, m) in packed for d, m in zip(table["dataset"], table["method"])]
    table["reference"] = table.groupby("dataset")["method"].transform(_reference)
    base = table[table["method"] == table["reference"]].set_index("dataset")["median"]
    table["ratio"] = table["median"] / table["dataset"].map(base)
    return table


def _cost_title(table: pd.DataFrame) -> str:
    title = "Median s / iteration (log scale); ×: ratio to " + display_name(_reference(table["method"]))
    if table["packed"].all():
        return title + "\nall timings from packed runs (device shared): compare with care"
    if table["packed"].any():
        return title + "\nhatched: timed in packed runs only (device shared), inflated"
    return title


def plot_iteration_cost(results: Results) -> Figure:
    """Horizontal log-scale bars of the median s/iteration per method, one panel per dataset."""
    table = iteration_cost(results)
    datasets = sorted(table["dataset"].unique())
    methods = method_order(table["method"])
    width = COLUMN_WIDTH if len(datasets) == 1 else TEXT_WIDTH
    fig, axes = _new_figure(width, 0.8 + 0.16 * len(methods), 1, len(datasets), sharey=True)
    palette = method_palette(methods)
    with _drawing(fig):
        for ax, dataset in zip(axes.flat, datasets):
            rows = table[table["dataset"] == dataset].set_index("method").reindex(methods)
            y = np.arange(len(methods))
            mixed = table["packed"].any() and not table["packed"].all()
            hatches = ["////" if packed and mixed else "" for packed in rows["packed"].eq(True)]
            bars = ax.barh(y, rows["median"], color=[palette[m] for m in methods], edgecolor="white")
            for bar, hatch in zip(bars, hatches):
                bar.set_hatch(hatch)
            for yi, (value, ratio) in enumerate(zip(rows["median"], rows["ratio"])):
                if not math.isnan(value):
                    ax.text(value * 1.12, yi, f"×{ratio:.1f}", va="center", fontsize=6)
            ax.set_xscale("log")
            _plain_log_axis(ax.xaxis)
            low, high = np.nanmin(rows["median"]), np.nanmax(rows["median"])
            ax.set_xlim(low / 2.5, high * 3.5)
            ax.set_yticks(y, [display_name(m) for m in methods])
            ax.set_ylim(len(methods) - 0.5, -0.5)  # listing order top-down (idempotent on shared axes)
            ax.set_xlabel("seconds per iteration")
            if len(datasets) > 1:
                ax.set_title(dataset)
        sns.despine(fig)
        fig.suptitle(_cost_title(table))
    return fig


def pareto_front(points: pd.DataFrame, x: str = "time", y: str = "accuracy") -> pd.DataFrame:
    """The rows no other row beats, sorted by `x`: lower `x` (time) and higher `y` (accuracy) are better.

    A row is beaten when another has x ≤ and y ≥ with one of them strict. Rows with a NaN are
    ignored; of exact duplicates the first is kept.
    """
    ordered = points.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False], kind="stable")
    keep, best = [], -math.inf
    for index, value in ordered[y].items():
        if value > best:
            keep.append(index)
            best = value
    return points.loc[keep]


def time_accuracy_data(results: Results, metric: str, cell: Cell) -> pd.DataFrame:
    """Per method in `cell`: median total training time (s), metric mean/std/n over seeds, packed flag."""
    cell_runs = in_cell(results.runs, cell)
    refuse_backbone_sweep(cell_runs[cell_runs["status"] == "done"])  # one point per method, never pooled
    scores = cell_runs[cell_runs["status"] == "done"].rename(columns={metric_column(metric): "value"})
    accuracy = _seed_stats(scores.dropna(subset=["value"]), ["method"]).set_index("method")
    runs, packed = timed_runs(cell_runs)
    time = runs.dropna(subset=["sec_total"]).groupby("method")["sec_total"].median().rename("time")
    table = accuracy.join(time, how="inner").rename(columns={"mean": "accuracy"})
    if table.empty:
        raise SkipPlot(f"no finished run of {cell.label()} records its total time and {metric} accuracy")
    table["packed"] = [(cell.dataset, m) in packed for m in table.index]
    return table.loc[method_order(table.index)]


def plot_accuracy_vs_time(results: Results, metric: str = "last", cell: Cell | None = None,
                          ax: Axes | None = None) -> Figure:
    """Accuracy against total training time for one cell, one point per method, Pareto front dashed."""
    cell = cell or default_cell(results)
    table = time_accuracy_data(results, metric, cell)
    front = pareto_front(table, "time", "accuracy")
    palette, markers = method_palette(table.index), method_markers(table.index)
    own = ax is None
    fig, ax = _axes_figure(ax, COLUMN_WIDTH, 2.3 + 0.14 * math.ceil(len(table) / 3))
    with _drawing(fig, own):
        ax.plot(front["time"], front["accuracy"], ls="--", color="0.5", lw=0.8, zorder=1)
        for method, row in table.iterrows():
            ax.errorbar(row["time"], row["accuracy"], yerr=row["std"] if row["n"] > 1 else None, fmt=markers[method],
                        color=palette[method], ms=4, capsize=1.5, lw=0.7, zorder=2,
                        mfc="white" if row["packed"] else palette[method], mew=1.0)
        if table["time"].max() > 10 * table["time"].min():
            ax.set_xscale("log")
            _plain_log_axis(ax.xaxis)
        ax.set_xlabel("total training time (s, median over seeds)")
        ax.set_ylabel(f"{METRIC_LABELS[metric]} acc. (%)")
        ax.grid(lw=0.3, alpha=0.5)
        sns.despine(ax=ax)
        notes = ["dashed: Pareto front", f"bars: ±1 std ({_n_range(table['n'])})" if table["n"].max() > 1
                 else "n=1", "hollow: packed runs" if table["packed"].any() else ""]
        ax.set_title(f"{cell.label()}: accuracy vs training time\n" + "; ".join(n for n in notes if n))
        front_handle = Line2D([], [], ls="--", color="0.5", label="Pareto front")
        _method_legend(fig, list(table.index), [front_handle], ax=None if own else ax)
    return fig


# ---------------------------------------------------------------------------------------------
# 5. training curves and 6. diagnostics, for one cell


def default_cell(results: Results) -> Cell:
    """The cell with the most finished runs; ties go to the first cell in `Results.cells()` order."""
    cells = results.cells()
    counts = {Cell(*key): n for key, n in results.done.groupby(list(CELL_KEYS)).size().items()}
    return max(cells, key=lambda c: (counts.get(c, 0), -cells.index(c)))


def resolve_cell(results: Results, cell: Cell | None) -> Cell:
    """`cell` if the results hold it (UsageError otherwise), else `default_cell`."""
    if cell is None:
        return default_cell(results)
    if cell not in results.cells():
        choices = ", ".join(c.spec() for c in results.cells())
        raise UsageError(f"the results hold no cell '{cell.label()}'; choose one of: {choices}")
    return cell


def cell_epochs(results: Results, cell: Cell) -> pd.DataFrame:
    """Per-epoch rows of the finished runs of `cell`, with their method and seeds."""
    runs = in_cell(results.done, cell)[["run_id", "method", "data_seed", "seed"]]
    return results.epochs.merge(runs, on="run_id", how="inner")


def curve_data(results: Results, cell: Cell, column: str = "test_acc") -> pd.DataFrame:
    """Seed mean/std/n of an epochs column per method and epoch in `cell` (NaN rows ignored)."""
    epochs = cell_epochs(results, cell)
    if column not in epochs:
        raise SkipPlot(f"the epochs table has no column '{column}'")
    frame = epochs.dropna(subset=[column])
    if frame.empty:
        raise SkipPlot(f"no finished run of {cell.label()} records '{column}' per epoch")
    table = _seed_stats(frame, ["method", "epoch"], column)
    return table.sort_values(["method", "epoch"], ignore_index=True)


def _mark_last_best(ax: Axes, line: pd.DataFrame, colour) -> None:
    """Mark the last epoch (circle) and the best epoch (star) of a seed-mean curve."""
    last = line.iloc[-1]
    best = line.loc[line["mean"].idxmax()]
    ax.plot(best["epoch"], best["mean"], "*", color=colour, ms=6, mec="black", mew=0.4, zorder=3)
    ax.plot(last["epoch"], last["mean"], "o", color=colour, ms=2.5, mec="black", mew=0.4, zorder=4)


def plot_training_curves(results: Results, cell: Cell | None = None, ax: Axes | None = None) -> Figure:
    """Test accuracy per epoch for one cell: seed mean with band per method, last and best marked."""
    cell = cell or default_cell(results)
    data = curve_data(results, cell)
    methods = method_order(data["method"])
    palette = method_palette(methods)
    own = ax is None
    fig, ax = _axes_figure(ax, COLUMN_WIDTH, 2.2 + 0.14 * math.ceil((len(methods) + 2) / 3))
    with _drawing(fig, own):
        for method in methods:
            line = data[data["method"] == method]
            x, mean, std = (line[c].to_numpy(float) for c in ("epoch", "mean", "std"))
            ax.plot(x, mean, color=palette[method])
            _draw_band(ax, x, mean, std, palette[method])
            _mark_last_best(ax, line, palette[method])
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(lw=0.3, alpha=0.5)
        sns.despine(ax=ax)
        ax.set_title(f"{cell.label()}: test accuracy per epoch\nband: {BAND} ({_n_range(data['n'])})")
        marks = [Line2D([], [], ls="", marker="o", ms=2.5, color="0.6", mec="black", mew=0.4, label="last"),
                 Line2D([], [], ls="", marker="*", ms=6, color="0.6", mec="black", mew=0.4, label="best (of mean)")]
        _method_legend(fig, methods, marks, ax=None if own else ax)
    return fig


def diagnostic_panels(epochs: pd.DataFrame) -> dict[str, list[str]]:
    """Panels of the method diagnostics with any value: panel name -> its columns.

    An `x_a`/`x_b` pair (DivideMix's two networks) shares the panel `x`. Known diagnostics
    come first, in `DIAGNOSTIC_LABELS` order, then the others by name.
    """
    columns = [c for c in epochs.columns if c not in STANDARD_EPOCH_COLUMNS
               and pd.api.types.is_numeric_dtype(epochs[c]) and epochs[c].notna().any()]
    panels: dict[str, list[str]] = {}
    for column in sorted(columns):
        stem = column[:-2]
        paired = column[-2:] in ("_a", "_b") and {stem + "_a", stem + "_b"} <= set(columns)
        panels.setdefault(stem if paired else column, []).append(column)
    known = list(DIAGNOSTIC_LABELS)
    return dict(sorted(panels.items(), key=lambda kv: (known.index(kv[0]) if kv[0] in known else len(known), kv[0])))


def plot_diagnostics(results: Results, cell: Cell | None = None) -> Figure:
    """Per-epoch seed means of every method diagnostic in one cell, one small panel each."""
    cell = cell or default_cell(results)
    epochs = cell_epochs(results, cell)
    panels = diagnostic_panels(epochs[results.epochs.columns])
    if not panels:
        raise SkipPlot(f"no finished run of {cell.label()} reports a per-epoch diagnostic")
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    methods = method_order(epochs.loc[epochs[[c for cs in panels.values() for c in cs]].notna().any(axis=1), "method"])
    palette = method_palette(methods)
    width = COLUMN_WIDTH if ncols <= 2 else TEXT_WIDTH
    fig, axes = _new_figure(width, 1.35 * nrows + 0.5, nrows, ncols)
    paired = any(len(cols) > 1 for cols in panels.values())
    with _drawing(fig):
        for ax, (name, columns) in zip(axes.flat, panels.items()):
            for column, style in zip(columns, ("-", "--")):
                data = _seed_stats(epochs.dropna(subset=[column]), ["method", "epoch"], column)
                for method, line in data.groupby("method"):
                    ax.plot(line["epoch"], line["mean"], ls=style if len(columns) > 1 else "-", color=palette[method])
            ax.set_title(DIAGNOSTIC_LABELS.get(name, name))
            ax.set_xlabel("epoch")
            _integer_epochs(ax)
            ax.grid(lw=0.3, alpha=0.5)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        sns.despine(fig)
        fig.suptitle(f"{cell.label()}: method diagnostics per epoch (seed means)")
        nets = [Line2D([], [], color="0.3", label="net A"), Line2D([], [], color="0.3", ls="--", label="net B")]
        _method_legend(fig, methods, nets if paired else None, ncol=3 if width == COLUMN_WIDTH else 6)
    return fig


# ---------------------------------------------------------------------------------------------
# writing


def _jobs(results: Results, metric: str, cell: Cell) -> list[tuple[str, str, Callable[[], Figure]]]:
    """(kind, file stem, draw) for every figure, in `KINDS` order."""
    noise_metrics = dict.fromkeys(["last", "best", metric])
    return [
        *[("accuracy_vs_noise", f"accuracy_vs_noise_{m}", lambda m=m: plot_accuracy_vs_noise(results, m))
          for m in noise_metrics],
        ("diff_heatmap", f"diff_heatmap_{metric}", lambda: plot_difference_heatmap(results, metric)),
        ("critical_difference", f"critical_difference_{metric}", lambda: plot_critical_difference(results, metric)),
        ("cost_per_iteration", "cost_per_iteration", lambda: plot_iteration_cost(results)),
        ("accuracy_vs_time", f"accuracy_vs_time_{metric}", lambda: plot_accuracy_vs_time(results, metric, cell)),
        ("training_curves", "training_curves", lambda: plot_training_curves(results, cell)),
        ("diagnostics", "diagnostics", lambda: plot_diagnostics(results, cell)),
    ]


def _check(results: Results, fmt: str, metric: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown plot format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    metric_column(metric)
    if results.done.empty:
        raise UsageError(f"results folder '{results.root}' holds no finished run; nothing to plot")


def make_plots(results: Results, *, fmt: str = "png", metric: str = "last", cell: Cell | None = None) -> PlotReport:
    """Draw every figure kind under `results.root / "plots"`; return what was written and skipped.

    A skipped figure's stale file from an earlier call is removed, so the folder never shows a
    figure these results no longer support.
    """
    _check(results, fmt, metric)
    cell = resolve_cell(results, cell)
    out = results.root / "plots"
    out.mkdir(parents=True, exist_ok=True)
    report = PlotReport()
    for kind, stem, draw in _jobs(results, metric, cell):
        path = out / f"{stem}.{fmt}"
        try:
            fig = draw()
        except SkipPlot as why:
            report.skipped.setdefault(kind, str(why))
            path.unlink(missing_ok=True)
            log.info("plots: skipped %s: %s", stem, why)
            continue
        report.written.setdefault(kind, []).append(save_figure(fig, path))
    return report


def write_plots(results: Results, *, fmt: str = "png", metric: str = "last", cell: Cell | None = None) -> list[Path]:
    """Write every figure these results support under `results.root / "plots"`; return the files.

    `fmt` is "png" (at DPI) or "pdf"; `metric` (last, best, last5) drives the heatmap, the
    critical-difference diagram and accuracy vs time; `cell` the per-cell figures (default:
    the cell with the most finished runs). Raises UsageError on a bad argument or no finished run.
    """
    return make_plots(results, fmt=fmt, metric=metric, cell=cell).paths
