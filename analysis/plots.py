"""Figures from a results store, written under `<results>/plots/` by `write_plots`.

Kinds (file stems in brackets, `{m}` the metric):
- accuracy against noise rate λ, one panel per dataset × ρ × noise model, clean cells at λ = 0;
  with more than `MAX_LINES` methods one panel per method family beside the reference
  [accuracy_vs_noise_last, _best, and _{m} for another metric];
- heatmap of each method's difference to CE per cell, clean cells first, marked where the
  within-cell test separates it from CE [diff_heatmap_{m}];
- critical-difference diagram over the complete cells (bars: all-pairs Wilcoxon–Holm) [critical_difference_{m}];
- median time per iteration per method, ratio to CE [cost_per_iteration];
- accuracy against total training time with the Pareto front, one cell [accuracy_vs_time_{m}];
- test-accuracy curves per epoch, one cell [training_curves];
- per-epoch method diagnostics, one cell [diagnostics].

Every figure prints readable names (`analysis.style`: CIFAR-10, long-tail prior, ρ, λ, method
display names) and a short title; the long explanation goes into `<stem>.caption.txt` beside it.
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
import textwrap
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
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, MaxNLocator, NullFormatter

from analysis import stats
from analysis.results import CELL_KEYS, METRIC_LABELS, Cell, Results, in_cell, metric_column, refuse_backbone_sweep
from analysis.style import (
    LAMBDA,
    RHO,
    baseline_method,
    cell_title,
    dataset_title,
    display_name,
    method_family,
    method_markers,
    method_order,
    method_palette,
    noise_title,
)
from bench.core.errors import UsageError

log = logging.getLogger(__name__)

FORMATS = ("png", "pdf")
DPI = 200
COLUMN_WIDTH = 3.3  # inches: one column of a two-column paper
TEXT_WIDTH = 7.0  # inches: full text width, for multi-panel figures
BAND = "mean ± 1 std over seeds"
#: most method lines in one accuracy-vs-noise panel; more methods are faceted by family
MAX_LINES = 5
#: marks on the heatmap: Holm-significant within-cell difference, and a difference of the same sign
#: and size on every seed (the t-test is degenerate there, see `analysis.stats.CONSTANT`)
SIGNIFICANT_MARK, CONSTANT_MARK = "*", "†"
CAPTION_SUFFIX = ".caption.txt"

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
    "weight_mean": "mean sample weight",
    "weight_clean": "mean weight, clean labels",
    "weight_noisy": "mean weight, noisy labels",
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
    captions: dict[str, list[Path]] = field(default_factory=dict)  # kind -> `<stem>.caption.txt` files

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


def _set_caption(fig: Figure, text: str) -> None:
    """Keep a figure's caption (what its short title leaves out) for `make_plots` to write beside it."""
    fig._noisytail_caption = text


def figure_caption(fig: Figure) -> str:
    """The caption a figure function gave `fig` ('' if none): the long explanation for the paper's caption."""
    return getattr(fig, "_noisytail_caption", "")


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


#: units of time tick labels: (seconds per unit, name); a label uses the largest unit ≤ its value
TIME_UNITS = ((1e-6, "µs"), (1e-3, "ms"), (1.0, "s"), (60.0, "min"), (3600.0, "h"))
#: tick candidates of a log time axis: nice values in each unit, then only the round ones
_FINE_TICKS = sorted({round(m * scale, 12) for scale, _ in TIME_UNITS[:2] for m in (1, 2, 5, 10, 20, 50, 100, 200, 500)}
                     | {1.0, 2.0, 5.0, 10.0, 20.0, 30.0} | {60.0 * m for m in (1, 2, 5, 10, 20, 30)}
                     | {3600.0 * m for m in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)})
MAX_TIME_TICKS = 6


def seconds_label(value: float) -> str:
    """A duration in seconds as a readable tick label: '50 µs', '500 ms', '30 s', '2 min', '5 h'."""
    if not value > 0:
        return f"{value:g}"
    scale, unit = TIME_UNITS[0]
    for candidate in TIME_UNITS:
        if value >= candidate[0] * (1 - 1e-9):
            scale, unit = candidate
    return f"{value / scale:.4g} {unit}"


class TimeLocator(Locator):
    """Major ticks of a log-scale time axis at nice durations (1, 2, 5 × 10^k µs or ms; 1-30 s; 1-30 min;
    hours), at most `MAX_TIME_TICKS` of them: the round ones (1, 10, 100 of a unit) when the nice ones
    are too many, every other one after that."""

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        low, high = sorted((vmin, vmax))
        fine = [t for t in _FINE_TICKS if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
        if len(fine) < 2:  # a range under a factor of ~2.5: every 1-9 × 10^k inside it
            steps = [m * 10.0 ** k for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                     for m in range(1, 10)] if low > 0 else []
            return [t for t in steps if low <= t <= high][:MAX_TIME_TICKS] or fine
        if len(fine) <= MAX_TIME_TICKS:
            return fine
        coarse = [t for t in fine if seconds_label(t).split()[0] in ("1", "10", "100")]
        while len(coarse) > MAX_TIME_TICKS:
            coarse = coarse[::2]
        return coarse


def _time_log_axis(axis) -> None:
    """Log-scale time axis: ticks at nice durations labelled with their unit ('10 ms', '1 s', '2 min'),
    minor ticks unlabelled."""
    axis.set_major_locator(TimeLocator())
    axis.set_major_formatter(FuncFormatter(lambda value, _: seconds_label(value)))
    axis.set_minor_locator(LogLocator(base=10, subs="auto"))
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
    """A protocol panel: e.g. 'CIFAR-10, ρ=100, long-tail prior' (clean cells sit at λ = 0)."""
    return f"{dataset_title(dataset)}, {RHO}={imbalance:g}, {noise_title(noise)}"


def family_facets(methods: Iterable[str], reference: str, max_lines: int = MAX_LINES) -> list[tuple[str, list[str]]]:
    """(title, methods) of each facet of the accuracy-vs-noise panels: every method in one facet when
    they fit (`max_lines` lines per panel), else one facet per method family (the registry's
    `family`), each holding the reference too; a family too large for one panel is split."""
    ordered = method_order(methods)
    if len(ordered) <= max_lines:
        return [("", ordered)]
    families: dict[str, list[str]] = {}
    for method in ordered:
        if method != reference:
            families.setdefault(method_family(method) or "other", []).append(method)
    facets = []
    for family, members in families.items():
        size = max_lines - 1  # the reference is drawn in every facet
        chunks = [members[i:i + size] for i in range(0, len(members), size)]
        for i, chunk in enumerate(chunks):
            title = family if len(chunks) == 1 else f"{family} ({i + 1}/{len(chunks)})"
            facets.append((title, [reference, *chunk] if reference in ordered else chunk))
    return facets


def plot_accuracy_vs_noise(results: Results, metric: str = "last") -> Figure:
    """Accuracy against noise rate λ: one row of panels per dataset × ρ × noise model, one line per method.

    With more methods than `MAX_LINES` the row is faceted by method family (`family_facets`): each
    panel shows one family's methods beside the reference (dashed), so no panel is crowded.
    """
    data = noise_curve_data(results, metric)
    panels = list(data.groupby(["dataset", "imbalance", "noise"], sort=True).groups)
    methods = method_order(data["method"])
    reference = _reference(methods)
    facets = family_facets(methods, reference)
    if len(facets) == 1:
        ncols = min(len(panels), 4)
        nrows = math.ceil(len(panels) / ncols)
        grid = [(panel, facets[0]) for panel in panels]
    else:
        ncols, nrows = len(facets), len(panels)
        grid = [(panel, facet) for panel in panels for facet in facets]
    width = COLUMN_WIDTH if ncols <= 2 else TEXT_WIDTH
    legend_cols = 3 if width == COLUMN_WIDTH else 6
    legend_rows = math.ceil(len(methods) / legend_cols)
    fig, axes = _new_figure(width, 1.6 * nrows + 0.14 * legend_rows + 0.3, nrows, ncols)
    palette, markers = method_palette(methods), method_markers(methods)
    ylabel = f"{METRIC_LABELS[metric]} acc. (%)"
    with _drawing(fig):
        for i, (ax, (panel, (family, members))) in enumerate(zip(axes.flat, grid)):
            rows = data[(data["dataset"] == panel[0]) & (data["imbalance"] == panel[1]) & (data["noise"] == panel[2])]
            for method in members:
                line = rows[rows["method"] == method].sort_values("noise_rate")
                if line.empty:
                    continue
                x, mean, std = (line[c].to_numpy(float) for c in ("noise_rate", "mean", "std"))
                faceted_reference = len(facets) > 1 and method == reference
                ax.plot(x, mean, marker=markers[method], color=palette[method], label=display_name(method),
                        ls="--" if faceted_reference else "-", zorder=1 if faceted_reference else 2)
                _draw_band(ax, x, mean, std, palette[method])
            ax.set_xticks(sorted(rows["noise_rate"].unique()))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.set_xlabel(f"noise rate {LAMBDA}")
            ax.grid(axis="y", lw=0.3, alpha=0.5)
            if len(facets) == 1:
                ax.set_title(_panel_title(*panel))
                ax.set_ylabel(ylabel)
            else:  # families name the columns, protocols the rows
                if i < ncols:
                    ax.set_title(textwrap.fill(family, 24))
                if i % ncols == 0:
                    row = textwrap.fill(_panel_title(*panel), 26, break_on_hyphens=False)  # within its row
                    ax.set_ylabel(f"{row}\n{ylabel}")
        for ax in axes.flat[len(grid):]:
            ax.set_visible(False)
        sns.despine(fig)
        fig.suptitle(f"{METRIC_LABELS[metric]} accuracy vs noise rate {LAMBDA}")
        _method_legend(fig, methods, ncol=legend_cols)
    caption = (f"{METRIC_LABELS[metric]} test accuracy (%) against the noise rate {LAMBDA}, one panel per dataset, "
               f"imbalance ratio {RHO} and noise model; clean cells ({LAMBDA} = 0) start every panel of their "
               f"dataset and {RHO}. Lines: seed means; bands: {BAND} ({_n_range(data['n'])}), absent where one "
               "seed finished.")
    if len(facets) > 1:
        caption += (f" Panels in a row show one method family each beside the reference, "
                    f"{display_name(reference)} (dashed).")
    _set_caption(fig, caption)
    return fig


# ---------------------------------------------------------------------------------------------
# 2. difference to CE


def heatmap_order(cells: Iterable[Cell]) -> list[Cell]:
    """Cells as the heatmap lists them: per dataset, clean cells first, then by noise model, rate λ and ρ."""
    return sorted(cells, key=lambda c: (c.dataset, c.noise != "none", c.noise, c.noise_rate, c.imbalance))


def difference_to_reference(results: Results, metric: str) -> tuple[pd.DataFrame, pd.Series, str]:
    """Seed-mean `metric` minus the reference method's, per cell (rows, in `heatmap_order`) and method (columns).

    The reference is CE, or the first method in listing order when CE has no finished run; its
    own (all-zero) column is left out. Returns (differences, the reference's values, its name).
    """
    matrix = results.cell_matrix(metric)
    if matrix.shape[1] < 2:
        raise SkipPlot("needs finished runs of at least two methods")
    matrix = matrix.loc[heatmap_order(matrix.index)]
    reference = _reference(matrix.columns)
    return matrix.drop(columns=reference).sub(matrix[reference], axis=0), matrix[reference], reference


def significance_marks(results: Results, metric: str, reference: str, alpha: float = 0.05) -> pd.DataFrame:
    """A mark per cell (rows) and method (columns): `SIGNIFICANT_MARK` where the stats report's within-cell
    test (`analysis.stats.within_cells`: paired t over seeds, Holm within the cell) separates the method
    from `reference` at `alpha`; `CONSTANT_MARK` where the difference is the same non-zero value on every
    seed (no p: the test is degenerate); '' elsewhere, and where no test ran (too few seeds)."""
    within = stats.within_cells(results, metric, reference, alpha)
    marks: dict[tuple[Cell, str], str] = {}
    for row in within.itertuples(index=False):
        if row.significant is True:
            marks[(row.cell, row.method)] = SIGNIFICANT_MARK
        elif row.test == stats.CONSTANT:
            marks[(row.cell, row.method)] = CONSTANT_MARK
    cells = list(dict.fromkeys(within["cell"]))
    methods = [m for m in dict.fromkeys(within["method"]) if m != reference]
    frame = pd.DataFrame("", index=pd.Index(cells, dtype=object), columns=methods)
    for (cell, method), mark in marks.items():
        frame.loc[cell, method] = mark
    return frame


def plot_difference_heatmap(results: Results, metric: str = "last", ax: Axes | None = None,
                            alpha: float = 0.05) -> Figure:
    """Heatmap of each method's seed-mean difference to CE per cell, annotated, centred at 0, clean
    cells first; marks where the within-cell test separates the method from CE (see `significance_marks`)."""
    diff, base, reference = difference_to_reference(results, metric)
    ref_name = display_name(reference)
    marks = significance_marks(results, metric, reference, alpha).reindex(index=diff.index, columns=diff.columns)
    marks = marks.fillna("")
    one_dataset = diff.index[0].dataset if len({cell.dataset for cell in diff.index}) == 1 else None
    frame = diff.copy()
    frame.index = [f"{cell_title(cell, with_dataset=one_dataset is None)}  [{'–' if math.isnan(v) else f'{v:.1f}'}]"
                   for cell, v in zip(diff.index, base)]
    frame.columns = [display_name(m) for m in diff.columns]
    annotations = np.array([["" if math.isnan(v) else f"{v:+.1f}{mark}" for v, mark in zip(values, row_marks)]
                            for values, row_marks in zip(diff.to_numpy(float), marks.to_numpy(str))], dtype=object)
    label_width = 0.05 * max(len(label) for label in frame.index)  # inches, at 6.5 pt
    width = min(TEXT_WIDTH, max(COLUMN_WIDTH, label_width + 0.45 * frame.shape[1] + 0.8))
    own = ax is None
    fig, ax = _axes_figure(ax, width, 0.2 * len(frame) + 1.2)
    values = diff.to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    with _drawing(fig, own):
        # symmetric limits centre the diverging map at 0 (seaborn's `center` adds nothing here)
        sns.heatmap(frame, ax=ax, cmap="RdBu", vmin=-limit, vmax=limit, mask=frame.isna(), annot=annotations,
                    fmt="", annot_kws={"size": 5.5}, linewidths=0.5, linecolor="white",
                    cbar_kws={"label": "Δ accuracy (points)", "shrink": 0.8, "pad": 0.02})
        ax.set_facecolor("0.92")  # cells where a method (or the reference) has no finished run
        ax.tick_params(length=0)
        ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right")
        where = f"{dataset_title(one_dataset)}: " if one_dataset else ""
        ax.set_title(f"{where}{METRIC_LABELS[metric]} acc. − {ref_name}")
    caption = (f"{METRIC_LABELS[metric]} test accuracy of each method minus {ref_name}'s, in points, per cell "
               f"(difference of seed means); [ ]: {ref_name}'s own accuracy (%). Cells are listed clean "
               f"({LAMBDA} = 0) first, then by noise model, noise rate {LAMBDA} and imbalance ratio {RHO}. "
               f"{SIGNIFICANT_MARK}: the method differs from {ref_name} in that cell by a paired t-test over seeds "
               "(paired on data seed and training seed; Welch's t-test where fewer than 3 seeds pair up), "
               f"Holm-corrected over the methods compared with {ref_name} in the cell, α = {alpha:g} (the "
               f"within-cell family of the stats report); {CONSTANT_MARK}: the difference is the same on every "
               f"seed, so the test is degenerate and the difference certain; unmarked: not significant, or fewer "
               f"than 3 seeds. Grey: not run or every run failed.")
    if reference != baseline_method():
        caption += f" {display_name(baseline_method())} has no finished run: the reference is {ref_name}."
    _set_caption(fig, caption)
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
        datasets = {cell.dataset for cell in results.cells()}
        where = f"{dataset_title(datasets.pop())}: a" if len(datasets) == 1 else "A"
        ax.set_title(f"{where}verage rank, {METRIC_LABELS[metric]} acc.")
        if own:  # height to fit the crossbars and label rows the diagram needed
            low, high = ax.get_ylim()
            fig.set_size_inches(COLUMN_WIDTH, 0.45 + 0.12 * (high - low))
    k = len(ranks)
    _set_caption(fig, f"Average rank of each method's {METRIC_LABELS[metric]} test accuracy (seed mean per cell; "
                      f"1 = best) over the N = {n_complete} cells of {n_cells} where every method finished; "
                      f"k = {k} methods. Bars join methods that the Wilcoxon signed-rank test over cells, "
                      f"Holm-corrected over all {k * (k - 1) // 2} pairs, does not separate at α = {alpha:g}. "
                      f"The Nemenyi critical difference CD = {cd:.2f} is drawn for reference only.")
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


def _cost_caption(table: pd.DataFrame) -> str:
    reference = display_name(_reference(table["method"]))
    caption = ("Median time per training iteration of each method (log scale), over its finished runs "
               f"({_n_range(table['n'])}) of each dataset; ×: ratio to {reference} on the same dataset. Timings "
               "come from solo runs where a method has any on that dataset.")
    if table["packed"].all():
        return caption + " All timings come from packed runs (several runs sharing a device): compare with care."
    if table["packed"].any():
        return caption + " Hatched: timed in packed runs only (several runs sharing a device), so inflated."
    return caption


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
            low, high = np.nanmin(rows["median"]), np.nanmax(rows["median"])
            ax.set_xlim(low / 2.5, high * 3.5)
            _time_log_axis(ax.xaxis)
            ax.set_yticks(y, [display_name(m) for m in methods])
            ax.set_ylim(len(methods) - 0.5, -0.5)  # listing order top-down (idempotent on shared axes)
            ax.set_xlabel("time per iteration (median)")
            if len(datasets) > 1:
                ax.set_title(dataset_title(dataset))
        sns.despine(fig)
        fig.suptitle("Time per iteration" if len(datasets) > 1 else f"{dataset_title(datasets[0])}: time per iteration")
    _set_caption(fig, _cost_caption(table))
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
            _time_log_axis(ax.xaxis)
            ax.set_xlabel("total training time (median)")
        else:
            ax.set_xlabel("total training time (s, median)")
        ax.set_ylabel(f"{METRIC_LABELS[metric]} acc. (%)")
        ax.grid(lw=0.3, alpha=0.5)
        sns.despine(ax=ax)
        ax.set_title(cell_title(cell))
        front_handle = Line2D([], [], ls="--", color="0.5", label="Pareto front")
        _method_legend(fig, list(table.index), [front_handle], ax=None if own else ax)
    spread = (f"error bars: ±1 std over seeds ({_n_range(table['n'])})" if table["n"].max() > 1
              else "one seed per method (n=1)")
    caption = (f"{METRIC_LABELS[metric]} test accuracy (%, seed mean) against the median total training time of "
               f"each method in {cell_title(cell)}; {spread}; dashed: the Pareto front (no other method is both "
               "faster and more accurate).")
    if table["packed"].any():
        caption += " Hollow markers: timed in packed runs only (several runs sharing a device), so inflated."
    _set_caption(fig, caption)
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
        ax.set_title(cell_title(cell))
        marks = [Line2D([], [], ls="", marker="o", ms=2.5, color="0.6", mec="black", mew=0.4, label="last"),
                 Line2D([], [], ls="", marker="*", ms=6, color="0.6", mec="black", mew=0.4, label="best (of mean)")]
        _method_legend(fig, methods, marks, ax=None if own else ax)
    _set_caption(fig, f"Test accuracy (%) per epoch in {cell_title(cell)}: seed mean per method, band {BAND} "
                      f"({_n_range(data['n'])}); circle: last epoch, star: best epoch of the mean curve.")
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
        fig.suptitle(cell_title(cell))
        nets = [Line2D([], [], color="0.3", label="net A"), Line2D([], [], color="0.3", ls="--", label="net B")]
        _method_legend(fig, methods, nets if paired else None, ncol=3 if width == COLUMN_WIDTH else 6)
    _set_caption(fig, f"Per-epoch diagnostics the methods report in {cell_title(cell)} (seed means)"
                      + ("; solid and dashed: DivideMix's two networks." if paired else "."))
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

    Each figure gets a short title; what it leaves out (spread, n, tests, marks) goes to its caption,
    written beside it as `<stem>.caption.txt` (plain text, one paragraph, for the paper's caption).
    A skipped figure's stale file (and caption) from an earlier call is removed, so the folder never shows a
    figure these results no longer support.
    """
    _check(results, fmt, metric)
    cell = resolve_cell(results, cell)
    out = results.root / "plots"
    out.mkdir(parents=True, exist_ok=True)
    report = PlotReport()
    for kind, stem, draw in _jobs(results, metric, cell):
        path, caption_path = out / f"{stem}.{fmt}", out / f"{stem}{CAPTION_SUFFIX}"
        try:
            fig = draw()
        except SkipPlot as why:
            report.skipped.setdefault(kind, str(why))
            path.unlink(missing_ok=True)
            caption_path.unlink(missing_ok=True)
            log.info("plots: skipped %s: %s", stem, why)
            continue
        caption = figure_caption(fig)
        report.written.setdefault(kind, []).append(save_figure(fig, path))
        caption_path.write_text(caption + "\n", encoding="utf-8")
        report.captions.setdefault(kind, []).append(caption_path)
    return report


def write_plots(results: Results, *, fmt: str = "png", metric: str = "last", cell: Cell | None = None) -> list[Path]:
    """Write every figure these results support under `results.root / "plots"`; return the files.

    `fmt` is "png" (at DPI) or "pdf"; `metric` (last, best, last5) drives the heatmap, the
    critical-difference diagram and accuracy vs time; `cell` the per-cell figures (default:
    the cell with the most finished runs). Raises UsageError on a bad argument or no finished run.
    """
    return make_plots(results, fmt=fmt, metric=metric, cell=cell).paths
