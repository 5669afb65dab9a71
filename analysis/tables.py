"""Comparison tables from a results store, in any layout (`analysis/layouts.py` finds them), as
Markdown, LaTeX or CSV.

A cell shows mean ± std over seeds (sample std, ddof = 1, not the standard error). A cell
with nothing to show says why: "not run", "failed: <reason>", or it carries "(n=1)". The
best value per column and metric is bold, ties decided on the displayed (rounded) value. With
`reference=True` every method gets a "paper" row (the published number, with ⚠ notes where
`specs/reference_results.md` flags a defect) and a "Δ" row (ours − paper).

A † on one of our numbers marks a method that differs from the reference method (the registry's
baseline when it is in the table, else the first method listed) in that column, with the tests of
`analysis.stats`: in a cell column, its within-cell test over seeds (`compare_seeds`: paired t-test
on the runs paired by (data seed, train seed), Welch's t-test when too few pair up, or a certain
constant Δ) with Holm over the methods compared with the reference in that column and metric, as
`within_cells` does per cell; in an Avg column, its primary family across cells (`versus_reference`:
Wilcoxon signed-rank over the averaged cells' seed means, Holm over the methods with that Avg).
No † where the test cannot run (fewer than `MIN_SEEDS` seeds, missing cells) or on the reference.

A column may show another measure than top-1 on the main test set (`Column.measure`: top-5, the
ImageNet test set of mini-WebVision, …): ours is read from the epochs table at the epoch the
metric picks (for Best, the epoch of the highest top-1 test accuracy, one selection for all the
run's measures; `analysis.results`), the published number is the one printed for that measure.
A column may also hold one backbone only (`Column.backbone`, Dynamic Loss Table 8). Ablation
variants (`bench.grid.presets.VARIANTS`) are rows of their own, printed by their display name.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.layouts import Column, Layout, get_layout, paper_title
from analysis.reference import Published, defects_for, lookup, published_time_ms, table_methods
from analysis.results import CELL_KEYS, METRIC_LABELS, Cell, Results, in_cell, is_top1, metric_column
from analysis.stats import CONSTANT, MIN_SEEDS, compare_seeds, holm, versus_reference
from analysis.style import baseline_method, display_name, method_order
from bench.core.errors import UsageError
from bench.grid.layout import MEASURES
from bench.grid.presets import VARIANTS

FORMATS = ("md", "latex", "csv")
#: the significance mark of a number that differs from the reference method's (see the module doc)
DAGGER = "†"


@dataclass
class Entry:
    """One displayed slot of the table (a number or the reason there is none)."""

    text: str
    value: float = math.nan  # the number bolding compares (NaN: not comparable)
    mean: float = math.nan
    std: float = math.nan
    n: int = 0
    n_failed: int = 0
    status: str = "ok"  # ok | not run | failed | paper | avg | time | missing
    notes: tuple[int, ...] = ()  # footnote numbers
    bold: bool = False
    significant: bool = False  # † : differs from the reference method (Holm-adjusted, see the module doc)
    sig_test: str = ""  # the test behind `significant` ("" where none ran)
    p_holm: float = math.nan  # its Holm-adjusted p (NaN where none ran, or for a certain constant Δ)


@dataclass
class Table:
    """A laid-out table: row keys, column headers, entries, caption and numbered footnotes."""

    layout: Layout
    metrics: tuple[str, ...]
    reference: bool
    headers: list[tuple[str, str]]  # (group, label) per value column
    rows: list[tuple[str, str, str]]  # (method, metric, source) with source in ours | paper | Δ
    entries: list[list[Entry]]
    caption: str
    footnotes: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # per column: cell | avg | time
    columns: list[Column | None] = field(default_factory=list)
    sig_reference: str | None = None  # the method † compares against (None: fewer than 2 methods)
    alpha: float = 0.05


# ------------------------------------------------------------------------------------ build


def build_table(results: Results, layout_name: str = "grid", metric: str | None = None,
                reference: bool = False, alpha: float = 0.05) -> Table:
    """Lay out `results` as `layout_name`; `metric` overrides the layout's metric sub-rows; `alpha` is
    the level of the † marks."""
    layout = get_layout(layout_name, results)
    metrics = (metric,) if metric else layout.metrics
    for m in metrics:
        metric_column(m)
    if reference and layout.paper is None:
        raise UsageError("--reference needs a paper layout (e.g. --layout dl-table2); the grid layout has no "
                         "published counterpart")
    runs = _runs_in(results, layout)
    methods = [m for m in results.methods() if m in set(runs["method"])]
    builder = _Builder(layout, metrics, reference, runs, results, alpha)
    for method in methods:
        for m in metrics:
            builder.add_method_rows(method, m)
    return builder.finish(results, methods)


def _runs_in(results: Results, layout: Layout) -> pd.DataFrame:
    wanted = {col.cell for col in layout.columns}
    keys = results.runs[list(CELL_KEYS)].itertuples(index=False)
    runs = results.runs[[Cell(*k) in wanted for k in keys]]
    if runs.empty:
        example = ", ".join(col.cell.label() for col in layout.columns[:3])
        hint = f"`python -m bench run grid --preset {layout.preset} --out {results.root}`" if layout.preset else \
            "a grid with these cells"
        raise UsageError(f"results in '{results.root}' have none of the {len(layout.columns)} cells of layout "
                         f"'{layout.name}' (e.g. {example}); run {hint}, or use --layout grid")
    return runs


class _Builder:
    """Accumulates rows; computes Avg, bolding and footnotes at the end."""

    def __init__(self, layout: Layout, metrics: tuple[str, ...], reference: bool, runs: pd.DataFrame,
                 results: Results, alpha: float = 0.05) -> None:
        self.layout, self.metrics, self.reference, self.runs = layout, metrics, reference, runs
        self.results, self.alpha = results, alpha
        #: (metric, column index) -> method -> its values keyed by (data seed, train seed), for the † tests
        self.seeds: dict[tuple[str, int], dict[str, pd.Series]] = {}
        self.rows: list[tuple[str, str, str]] = []
        self.entries: list[list[Entry]] = []
        self.footnotes: list[str] = []
        self.headers, self.kinds, self.columns = self._columns()

    def _columns(self) -> tuple[list[tuple[str, str]], list[str], list[Column | None]]:
        headers: list[tuple[str, str]] = []
        kinds: list[str] = []
        columns: list[Column | None] = []
        if self.layout.time_column:
            headers.append(("", "ms/iter"))
            kinds.append("time")
            columns.append(None)
        for i, col in enumerate(self.layout.columns):
            headers.append((col.group, col.label))
            kinds.append("cell")
            columns.append(col)
            last_of_group = i + 1 == len(self.layout.columns) or self.layout.columns[i + 1].group != col.group
            if self.layout.avg == "group" and last_of_group:
                headers.append((col.group, "Avg"))
                kinds.append("avg")
                columns.append(None)
        if self.layout.avg == "all":
            headers.append(("", "Avg"))
            kinds.append("avg")
            columns.append(None)
        return headers, kinds, columns

    def note(self, text: str) -> int:
        if text not in self.footnotes:
            self.footnotes.append(text)
        return self.footnotes.index(text) + 1

    # -- one method × metric: ours, then (with reference) paper and Δ
    def add_method_rows(self, method: str, metric: str) -> None:
        mine = self.runs[self.runs["method"] == method]
        ours = [self._ours(mine, col, metric, (method, j)) if kind == "cell" else None
                for j, (kind, col) in enumerate(zip(self.kinds, self.columns))]
        if self.layout.time_column:
            ours[0] = self._time(mine)
        self._fill_averages(ours)
        self.rows.append((method, metric, "ours"))
        self.entries.append(ours)  # type: ignore[arg-type]
        if self.reference:
            paper = self._paper(method, metric, mine)
            self._fill_averages(paper, paper=True)
            self.rows.append((method, metric, "paper"))
            self.entries.append(paper)  # type: ignore[arg-type]
            self.rows.append((method, metric, "Δ"))
            self.entries.append([_delta(o, p, self.layout.decimals) for o, p in zip(ours, paper)])

    def _ours(self, mine: pd.DataFrame, col: Column, metric: str, slot: tuple[str, int]) -> Entry:
        here = in_cell(mine, col.cell)
        if col.backbone:
            here = here[here["backbone"] == col.backbone]
        if here.empty:
            return Entry("not run", status="not run")
        if here["backbone"].nunique() > 1:  # a backbone sweep under a layout without backbone columns
            note = self.note("runs on several backbones: this layout has no column per backbone, "
                             "so they are not pooled")
            return Entry("–", status="missing", notes=(note,))
        finished = here[here["status"] == "done"]
        all_values = self.results.values(finished, metric, col.measure)
        done = all_values.dropna()
        failed = here[here["status"] != "done"]
        if done.empty and len(finished) and metric == "selected":
            note = self.note("the runs held out no validation split, so nothing selects an epoch (run the grid with "
                             "--val-fraction F)")
            return Entry("–", status="missing", notes=(note,), n_failed=len(failed))
        if done.empty and len(finished):
            note = self.note(f"the runs recorded no {_measure_text(col.measure)} (epochs column "
                             f"'{MEASURES[col.measure]}')")
            return Entry("–", status="missing", notes=(note,), n_failed=len(failed))
        if done.empty:
            reason = next((e for e in failed["error"] if e), "no result")
            return Entry(f"failed: {_short(reason)}", status="failed", n_failed=len(failed))
        keys = finished.loc[done.index, ["data_seed", "seed"]]
        self.seeds.setdefault((metric, slot[1]), {})[slot[0]] = done.groupby([keys["data_seed"], keys["seed"]]).mean()
        mean, std, n = float(done.mean()), float(done.std(ddof=1)) if len(done) > 1 else math.nan, len(done)
        return Entry("", value=mean, mean=mean, std=std, n=n, n_failed=len(failed))

    def _time(self, mine: pd.DataFrame) -> Entry:
        done = mine[mine["status"] == "done"]
        solo = done[done["colocated"] <= 1] if "colocated" in done else done
        times = (solo if len(solo) else done)["sec_per_iter"].dropna() * 1000.0
        if times.empty:
            return Entry("–", status="missing")
        entry = Entry("", mean=float(times.median()), n=len(times), status="time")
        if len(solo) < len(done) and not len(solo):
            entry.notes = (self.note("times from runs that shared a device with other trials"),)
        return entry

    def _paper(self, method: str, metric: str, mine: pd.DataFrame) -> list[Entry]:
        layout = self.layout
        names = layout.paper_names.get(method, ())
        row_backbone = mine["backbone"].mode().iloc[0] if len(mine) else None
        out: list[Entry] = []
        for kind, col in zip(self.kinds, self.columns):
            if kind == "time":
                hit = published_time_ms(layout.paper, layout.table, names)  # type: ignore[arg-type]
                if hit is None:
                    out.append(Entry("–", status="missing"))
                else:
                    note = self.note(f"paper time: ms per iteration on one V100 ({hit.name})")
                    out.append(Entry("", mean=hit.value, status="time", notes=(note,)))
                continue
            if kind != "cell":
                average = layout.average_rows
                if average is not None and method in average.names:  # printed only as this average
                    hit = lookup(layout.paper, average.table, average.names[method], average.key, metric,  # type: ignore[arg-type]
                                 row_backbone)
                    out.append(self._published(hit, row_backbone))
                else:
                    out.append(Entry("", status="paper"))  # filled by _fill_averages
                continue
            backbone = col.backbone or row_backbone
            hit = lookup(layout.paper, layout.table, names, col.ref_key(), metric, backbone,  # type: ignore[arg-type]
                         measure=col.measure)
            out.append(self._published(hit, backbone))
        return out

    def _published(self, hit: Published | None, backbone: str | None) -> Entry:
        """The paper slot of one published number (None: '–')."""
        if hit is None:
            return Entry("–", status="missing")
        notes = [self.note(f) for f in hit.flags]
        if backbone and hit.backbone != backbone:
            notes.append(self.note(f"'{hit.name}' was published with {hit.backbone}; our runs used {backbone}"))
        return Entry("", value=math.nan, mean=hit.value, std=hit.std, n=0, status="paper",
                     notes=tuple(dict.fromkeys(notes)))

    def _fill_averages(self, row: list[Entry | None], paper: bool = False) -> None:
        """Avg = mean of the row's displayed cell means ('–' if any is missing); a paper row keeps an
        average the paper prints itself (`Layout.average_rows`)."""
        start = 0
        for i, kind in enumerate(self.kinds):
            if kind != "avg":
                continue
            if paper and row[i] is not None and not math.isnan(row[i].mean):  # type: ignore[union-attr]
                start = i + 1
                continue
            if self.layout.avg == "all":
                members = [j for j, k in enumerate(self.kinds) if k == "cell"]
            else:
                group = self.headers[i][0]
                members = [j for j in range(start, i) if self.kinds[j] == "cell" and self.headers[j][0] == group]
            start = i + 1
            means = [row[j].mean for j in members if row[j] is not None]  # type: ignore[union-attr]
            ok = len(means) == len(members) and all(not math.isnan(v) for v in means)
            if ok:
                avg = sum(means) / len(means)
                row[i] = Entry("", value=math.nan if paper else avg, mean=avg, status="avg")
            else:
                row[i] = Entry("–", status="missing")

    def finish(self, results: Results, methods: list[str]) -> Table:
        decimals = self.layout.decimals
        n_max = max((e.n for row, key in zip(self.entries, self.rows) if key[2] == "ours"
                     for e, k in zip(row, self.kinds) if k == "cell"), default=0)
        for row, key in zip(self.entries, self.rows):
            for entry in row:
                if not entry.text:
                    entry.text = _number_text(entry, decimals, n_max if key[2] == "ours" else 0)
        self._bold()
        sig_reference = _sig_reference(methods)
        if sig_reference is not None:
            self._significance(sig_reference)
        if self.layout.paper and self.reference:
            for method in methods:
                names = self.layout.paper_names.get(method, ())
                for name in names[:1]:
                    for text in defects_for(self.layout.paper, self.layout.table, name, None, avg=True):
                        self.note(text)
        caption = self._caption(results, methods, n_max, sig_reference)
        return Table(self.layout, self.metrics, self.reference, self.headers, self.rows, self.entries, caption,
                     self.footnotes, self.kinds, self.columns, sig_reference, self.alpha)

    def _significance(self, reference: str) -> None:
        """Set the † of every "ours" entry: per cell column and metric, each method's within-cell test
        against `reference` (`compare_seeds`) with Holm over the methods tested in that column, as
        `stats.within_cells` does per cell; per Avg column, `stats.versus_reference` over its cells."""
        for m in self.metrics:
            ours = {key[0]: row for key, row in zip(self.rows, self.entries) if key[1] == m and key[2] == "ours"}
            if reference not in ours:
                continue
            for j, kind in enumerate(self.kinds):
                if kind == "cell":
                    self._cell_marks(ours, reference, self.seeds.get((m, j), {}), j)
                elif kind == "avg":
                    self._avg_marks(ours, reference, j)

    def _cell_marks(self, ours: dict[str, list[Entry]], reference: str, seeds: dict[str, pd.Series], j: int) -> None:
        if reference not in seeds:
            return
        tested = {method: compare_seeds(values, seeds[reference], self.alpha)
                  for method, values in seeds.items() if method != reference}
        names = list(tested)
        adjusted, reject = holm([tested[name].p for name in names], self.alpha)
        for name, p_holm, rej in zip(names, adjusted, reject):
            entry, comp = ours[name][j], tested[name]
            if comp.test == CONSTANT:  # the same non-zero Δ on every seed: certain, outside the Holm family
                entry.significant, entry.sig_test = True, CONSTANT
            elif not math.isnan(p_holm):
                entry.significant, entry.sig_test, entry.p_holm = bool(rej), comp.test, float(p_holm)

    def _avg_marks(self, ours: dict[str, list[Entry]], reference: str, j: int) -> None:
        members = self._avg_members(j)
        complete = {method: [row[i].mean for i in members] for method, row in ours.items()
                    if row[j].status == "avg" and all(not math.isnan(row[i].mean) for i in members)}
        if reference not in complete or len(complete) < 2 or len(members) < 2:
            return
        matrix = pd.DataFrame(complete)
        family = versus_reference(matrix, reference, self.alpha)
        for method, p_holm, rej in zip(family["method"], family["p_holm"], family["significant"]):
            entry = ours[method][j]
            entry.significant, entry.sig_test, entry.p_holm = bool(rej), "Wilcoxon over cells", float(p_holm)

    def _avg_members(self, j: int) -> list[int]:
        """The cell columns an Avg column averages (see `_fill_averages`)."""
        if self.layout.avg == "all":
            return [i for i, k in enumerate(self.kinds) if k == "cell"]
        start = max((i + 1 for i in range(j) if self.kinds[i] == "avg"), default=0)
        return [i for i in range(start, j) if self.kinds[i] == "cell" and self.headers[i][0] == self.headers[j][0]]

    def _bold(self) -> None:
        decimals = self.layout.decimals
        for j, kind in enumerate(self.kinds):
            if kind == "time":
                continue
            for m in self.metrics:
                slots = [row[j] for row, key in zip(self.entries, self.rows)
                         if key[1] == m and key[2] == "ours" and not math.isnan(row[j].value)]
                if len(slots) < 2:
                    continue
                best = max(round(e.value, decimals) for e in slots)
                for e in slots:
                    e.bold = round(e.value, decimals) == best

    def _caption(self, results: Results, methods: list[str], n_max: int, sig_reference: str | None) -> str:
        layout = self.layout
        n_values = sorted({e.n for row, key in zip(self.entries, self.rows) if key[2] == "ours"
                           for e, k in zip(row, self.kinds) if k == "cell" and e.n})
        if not n_values:
            n_text = "no finished runs"
        elif len(n_values) == 1:
            n_text = f"n = {n_values[0]} seed{'s' if n_values[0] > 1 else ''} per cell"
        else:
            n_text = f"n = {n_values[0]}–{n_values[-1]} seeds per cell; cells with fewer than {n_max} show their n"
        parts = [f"{layout.title}.",
                 f"Mean ± std over seeds (sample standard deviation, not the standard error); {n_text}.",
                 "; ".join(_METRIC_DEFINITIONS[m] for m in self.metrics) + "."]
        measures = list(dict.fromkeys(col.measure for col in layout.columns if not is_top1(col.measure)))
        if measures:
            parts.append("Columns other than top-1 on the main test set: "
                         + "; ".join(dict.fromkeys(_MEASURE_DEFINITIONS[m] for m in measures))
                         + "; each at the epoch the metric picks (Best: the epoch of the highest top-1 test "
                         "accuracy, one selection for every measure of a run).")
        parts.append("Bold: best per column and metric (ties on the displayed value are all bold).")
        if layout.avg:
            parts.append("Avg: mean of the row's cells, '–' when one is missing.")
        if layout.time_column:
            parts.append("ms/iter: median wall-clock per training iteration of our runs (device in the runs table).")
        if sig_reference is not None:
            parts.append(self._dagger_sentence(sig_reference, n_max))
        missing = _missing_summary(self.rows, self.entries, self.headers, self.kinds)
        if missing:
            parts.append(missing)
        if self.reference:
            parts.append(f"paper: {paper_title(layout.paper)} Table {layout.table} as printed "
                         "(results/reference/published_results.csv); Δ = ours − paper.")
            others = _without_run(layout.paper, layout.table, layout.paper_names, methods)
            if others:
                parts.append(f"Published rows without a run here: {', '.join(others)}.")
            average = layout.average_rows
            if average is not None:
                shown = [_name(m) for m in methods if m in average.names]
                if shown:
                    parts.append(f"paper Avg of {', '.join(shown)}: {paper_title(layout.paper)} Table {average.table}, "
                                 "which prints only that average over these cells.")
                rest = _without_run(layout.paper, average.table, average.names, methods)
                if rest:
                    parts.append(f"Rows of Table {average.table} without a run here: {', '.join(rest)}.")
        return " ".join(parts)

    def _dagger_sentence(self, reference: str, n_max: int) -> str:
        """What † means: test, correction, level and reference (and why no cell has one, if so)."""
        ref = _name(reference)
        text = (f"{DAGGER}: differs from {ref} (reference) at α = {self.alpha:g}: in a cell, paired t-test over seeds "
                f"(Welch's t-test when fewer than {MIN_SEEDS} seeds pair up, or certain when every seed differs by "
                f"the same amount) with Holm over the methods compared with {ref} in that column, which needs "
                f"≥ {MIN_SEEDS} seeds of both methods")
        if not _tested(self.entries, self.rows, self.kinds):
            why = (f"the runs have at most {n_max} seed{'s' * (n_max != 1)} per cell" if n_max < MIN_SEEDS
                   else f"no cell has ≥ {MIN_SEEDS} seeds of {ref} and of another method")
            text += f", so no cell has a mark here ({why})"
        if self.layout.avg:
            text += f"; in Avg, Wilcoxon signed-rank over the averaged cells' means with Holm over the methods vs {ref}"
        return text + "."


def _tested(entries: list[list[Entry]], rows: list[tuple[str, str, str]], kinds: list[str]) -> bool:
    """Whether any cell column of "ours" ran a † test."""
    return any(e.sig_test for row, key in zip(entries, rows) if key[2] == "ours"
               for e, kind in zip(row, kinds) if kind == "cell")


def _sig_reference(methods: list[str]) -> str | None:
    """The method † compares against: the registry's baseline if in the table, else the first method
    listed (the rule of the plots' reference); None with fewer than two methods."""
    if len(methods) < 2:
        return None
    return baseline_method() if baseline_method() in methods else method_order(methods)[0]


def _without_run(paper: str | None, table: int, names: dict[str, tuple[str, ...]], methods: list[str]) -> list[str]:
    """The methods a published table prints that none of `methods` (by their printed `names`) stands for."""
    ran = {n for m in methods for n in names.get(m, ())}
    return [n for n in table_methods(paper, table) if n not in ran]  # type: ignore[arg-type]


_METRIC_DEFINITIONS = {
    "last": "Last: test accuracy after the final epoch",
    "best": "Best: the highest test accuracy over epochs (selected on the test set, so optimistic)",
    "last5": "Last-5 mean: mean test accuracy over the last 5 epochs",
    "selected": "Selected: test accuracy at the epoch of the highest noisy-validation score (class-balanced on "
                "long-tailed data), model selection without the test set",
}
_MEASURE_DEFINITIONS = {
    "top5": "top-5: top-5 accuracy on the main test set (WebVision val for mini-WebVision)",
    "imagenet_top1": "ImageNet top-1/top-5: on the ILSVRC-2012 val images of the same classes",
    "imagenet_top5": "ImageNet top-1/top-5: on the ILSVRC-2012 val images of the same classes",
    "many": "many/medium/few: mean per-class top-1 accuracy of the many-, medium- and few-shot classes",
    "medium": "many/medium/few: mean per-class top-1 accuracy of the many-, medium- and few-shot classes",
    "few": "many/medium/few: mean per-class top-1 accuracy of the many-, medium- and few-shot classes",
}


def _measure_text(measure: str) -> str:
    return {"": "top-1 accuracy", "top1": "top-1 accuracy", "top5": "top-5 accuracy",
            "imagenet_top1": "ImageNet top-1 accuracy", "imagenet_top5": "ImageNet top-5 accuracy",
            "many": "many-shot accuracy", "medium": "medium-shot accuracy", "few": "few-shot accuracy"}[measure]


def _name(method: str) -> str:
    """How a row prints a method or an ablation variant."""
    return VARIANTS.get(method).display_name if method in VARIANTS else display_name(method)


def _number_text(entry: Entry, decimals: int, n_max: int) -> str:
    if math.isnan(entry.mean):
        return "–"
    text = f"{entry.mean:.{decimals}f}"
    if not math.isnan(entry.std) and entry.status in ("ok", "paper"):
        text += f" ± {entry.std:.{decimals}f}"
    extras = []
    if entry.status == "ok" and n_max and entry.n < n_max:
        extras.append(f"n={entry.n}")
    if entry.n_failed:
        extras.append(f"{entry.n_failed} failed")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _delta(ours: Entry | None, paper: Entry, decimals: int) -> Entry:
    if ours is None or math.isnan(ours.mean) or math.isnan(paper.mean) or ours.status == "time":
        if ours is not None and ours.status == "time" and not math.isnan(paper.mean) and not math.isnan(ours.mean):
            return Entry(f"×{ours.mean / paper.mean:.2f}", status="missing")
        return Entry("–", status="missing")
    diff = round(ours.mean, decimals) - round(paper.mean, decimals)
    return Entry(f"{diff:+.{decimals}f}".replace("-", "−"), mean=diff, status="missing")


def _short(reason: str, limit: int = 40) -> str:
    line = reason.strip().splitlines()[-1] if reason.strip() else "no result"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _missing_summary(rows, entries, headers, kinds) -> str:
    """'No runs at: …' for empty columns, then 'Not run: …' / 'Failed: …' per method."""
    ours = [(key[0], row) for key, row in zip(rows, entries) if key[2] == "ours"]
    where = [f"{g} {lab}".strip() for g, lab in headers]
    empty = [j for j, kind in enumerate(kinds)
             if kind == "cell" and ours and all(row[j].status == "not run" for _, row in ours)]
    parts = [f"No runs at: {', '.join(where[j] for j in empty)}."] if empty else []
    for status in ("not run", "failed"):
        items = list(dict.fromkeys(
            f"{_name(method)} at {where[j]}" for method, row in ours
            for j, kind in enumerate(kinds) if kind == "cell" and j not in empty and row[j].status == status))
        if items:
            parts.append(f"{status.capitalize()}: {', '.join(items)}.")
    return " ".join(parts)


# ---------------------------------------------------------------------------------- render


def _display_rows(table: Table) -> list[tuple[str, str, str]]:
    """(method, metric, source) labels as shown: a method's name only on its first sub-row."""
    out, previous = [], None
    for method, metric, source in table.rows:
        name = _name(method) if method != previous else ""
        metric_label = METRIC_LABELS[metric] if source in ("ours",) or not table.reference else ""
        out.append((name, metric_label, source))
        previous = method
    return out


def _marks(entry: Entry, style: str) -> str:
    """The † of a significant difference, then the footnote numbers."""
    dagger = (DAGGER if style == "md" else r"$^\dagger$") if entry.significant else ""
    if not entry.notes:
        return dagger
    numbers = ",".join(str(n) for n in entry.notes)
    return dagger + (f" ⚠{numbers}" if style == "md" else f"\\textsuperscript{{{numbers}}}")


def to_markdown(table: Table) -> str:
    """GitHub Markdown: a caption line, the table, numbered notes."""
    label_cols = ["Method", "Metric"] + (["Source"] if table.reference else [])
    heads = [f"{g} {lab}".strip() for g, lab in table.headers]
    lines = [table.caption, "", "| " + " | ".join(label_cols + heads) + " |",
             "|" + "---|" * len(label_cols) + "---:|" * len(heads)]
    for (name, metric, source), row in zip(_display_rows(table), table.entries):
        labels = [name, metric] + ([source] if table.reference else [])
        cells = [(f"**{e.text}**" if e.bold else e.text) + _marks(e, "md") for e in row]
        lines.append("| " + " | ".join(labels + cells) + " |")
    lines += [""] + [f"⚠{i}: {text}" for i, text in enumerate(table.footnotes, 1)]
    return "\n".join(lines).rstrip() + "\n"


_LATEX_SUBS = [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_"),
               ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}"), ("$", r"\$"),
               ("ρ", r"$\rho$"), ("λ", r"$\lambda$"), ("μ", r"$\mu$"), ("±", r"$\pm$"), ("Δ", r"$\Delta$"),
               ("−", r"$-$"), ("–", "--"), ("…", r"\dots{}"), ("×", r"$\times$"), ("♯", r"$\sharp$"),
               ("θ", r"$\theta$"), ("∗", r"$^{*}$"), ("†", r"$^{\dagger}$"), ("≈", r"$\approx$"),
               ("✓", r"$\checkmark$"), ("✗", r"$\times$"), ("⚠", ""), ("α", r"$\alpha$"), ("≥", r"$\geq$")]


def latex_escape(text: str) -> str:
    """Text safe for LaTeX (special characters escaped, Greek and symbols in math mode)."""
    out = text
    for char, sub in _LATEX_SUBS:
        out = out.replace(char, sub)
    return out


def to_latex(table: Table) -> str:
    """A booktabs table (needs \\usepackage{booktabs,multirow}, and amssymb for the check marks of
    Dynamic Loss Table 9)."""
    n_labels = 3 if table.reference else 2
    spec = "l" * n_labels + "r" * len(table.headers)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{latex_escape(table.caption)}}}", rf"\label{{tab:{table.layout.name}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    groups, rules, col = [], [], n_labels + 1
    for group, members in _runs_of(table.headers):
        groups.append(rf"\multicolumn{{{members}}}{{c}}{{{latex_escape(group)}}}" if group and members > 1
                      else latex_escape(group))
        if group:
            rules.append(rf"\cmidrule(lr){{{col}-{col + members - 1}}}")
        col += members
    if any(g for g, _ in table.headers):
        lines.append(" & " * n_labels + " & ".join(groups) + r" \\")
        lines.append("".join(rules))
    label_cols = ["Method", "Metric"] + (["Source"] if table.reference else [])
    lines.append(" & ".join(label_cols + [latex_escape(lab) for _, lab in table.headers]) + r" \\")
    lines.append(r"\midrule")
    span = _row_spans(table)
    for i, ((name, metric, source), row) in enumerate(zip(_display_rows(table), table.entries)):
        if name and i and max(span) > 1:  # a rule between methods that span several sub-rows
            lines.append(r"\midrule")
        first = rf"\multirow{{{span[i]}}}{{*}}{{{latex_escape(name)}}}" if name and span[i] > 1 else latex_escape(name)
        labels = [first, latex_escape(metric)] + ([latex_escape(source)] if table.reference else [])
        cells = [(rf"\textbf{{{latex_escape(e.text)}}}" if e.bold else latex_escape(e.text)) + _marks(e, "tex")
                 for e in row]
        lines.append(" & ".join(labels + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.footnotes:
        notes = "; ".join(f"\\textsuperscript{{{i}}} {latex_escape(t)}" for i, t in enumerate(table.footnotes, 1))
        lines.append(rf"\par\footnotesize {notes}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _runs_of(headers: list[tuple[str, str]]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for group, _ in headers:
        if out and out[-1][0] == group:
            out[-1] = (group, out[-1][1] + 1)
        else:
            out.append((group, 1))
    return out


def _row_spans(table: Table) -> list[int]:
    """How many sub-rows each method's first row spans."""
    spans = []
    for i, (method, _, _) in enumerate(table.rows):
        spans.append(sum(1 for m, _, _ in table.rows[i:] if m == method) if i == 0 or table.rows[i - 1][0] != method
                     else 0)
    return spans


def to_frame(table: Table) -> pd.DataFrame:
    """The table in long form: one row per (method, metric, source, column). The † is its own
    column (`significant`, with `sig_test`, `p_holm` and `sig_reference`), never part of `text`."""
    records = []
    for (method, metric, source), row in zip(table.rows, table.entries):
        for (group, label), kind, col, e in zip(table.headers, table.kinds, table.columns, row):
            cell = col.cell if col is not None else None
            records.append({
                "layout": table.layout.name, "method": method, "metric": metric, "source": source,
                "group": group, "column": label, "kind": kind,
                "dataset": cell.dataset if cell else "", "imbalance": cell.imbalance if cell else math.nan,
                "noise": cell.noise if cell else "", "noise_rate": cell.noise_rate if cell else math.nan,
                "measure": col.measure if col is not None else "", "backbone": col.backbone if col is not None else "",
                "mean": e.mean, "std": e.std, "n": e.n, "n_failed": e.n_failed, "status": e.status,
                "text": e.text, "bold": e.bold, "significant": e.significant, "sig_test": e.sig_test,
                "p_holm": e.p_holm, "sig_reference": table.sig_reference or "",
                "notes": json.dumps([table.footnotes[i - 1] for i in e.notes]) if e.notes else "",
            })
    return pd.DataFrame(records)


def render(table: Table, fmt: str) -> str:
    if fmt == "md":
        return to_markdown(table)
    if fmt == "latex":
        return to_latex(table)
    if fmt == "csv":
        return to_frame(table).to_csv(index=False)
    raise UsageError(f"unknown table format '{fmt}'; choose one of: {', '.join(FORMATS)}")


def write_table(table: Table, out_dir: Path) -> list[Path]:
    """Write the table as .md, .tex and .csv under `out_dir`; returns the paths."""
    stem = f"{table.layout.name}-{'-'.join(table.metrics)}{'-reference' if table.reference else ''}"
    return write_formats(lambda fmt: render(table, fmt), out_dir, stem)


def write_formats(text_of: Callable[[str], str], out_dir: Path, stem: str) -> list[Path]:
    """Write `text_of(fmt)` for md, latex and csv as `<stem>.md/.tex/.csv` under `out_dir`; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt, ext in (("md", "md"), ("latex", "tex"), ("csv", "csv")):
        path = out_dir / f"{stem}.{ext}"
        path.write_text(text_of(fmt))
        paths.append(path)
    return paths
