"""The tuning report: per method and cell, the default hyperparameters against the tuned ones, the
budget of the search, and the spread across its trials (`bench table --layout tuning`).

A results folder written by `bench tune` holds one run per trial (`runs.csv`, `tune_trial` set;
trial 0 always runs the method's defaults) and the search settings in `tuning.json` (optional:
without it the budget is counted from `runs.csv`). Per search (`bench.tune.select.GROUP_KEYS`: a
method on one cell of one preset) the report shows
- the budget: trials done / stopped early by the scheduler / failed out of the N planned, epochs
  per trial, the search algorithm and the scheduler;
- the defaults (trial 0): validation score and selected test accuracy;
- the tuned trial, chosen by `bench.tune.select.chosen_trials` on the noisy-validation score only
  (never on a test column): its number, validation score, selected test accuracy and the
  hyperparameters that differ from trial 0's;
- the gain, tuned − default selected test accuracy (only where trial 0 ran all epochs);
- the spread (min / median / max) of the selected test accuracy and of the validation score over
  the trials that ran all epochs ("done"; `spread_statuses` widens it).

"Selected" test accuracy (`selected_acc`) is the test accuracy at the epoch that maximises the
run's validation score (`selected_on`: "val_acc" or "val_bal_acc"); test columns are recorded,
never selected on. Written as `tables/tuning.{md,csv,tex}` under the results folder.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.results import CELL_KEYS, Results
from analysis.tables import latex_escape, write_formats
from bench.core.errors import UsageError
from bench.grid.layout import Cell
from bench.tune.choices import CHOICES_FILE
from bench.tune.select import GROUP_KEYS, chosen_trials, trials
from methods import METHODS

#: the stem of the written tables: tables/tuning.{md,csv,tex}
STEM = "tuning"
FORMATS = ("md", "latex", "csv")
DECIMALS = 2
#: what the validation metrics are called in the caption
VAL_TEXT = {"val_acc": "accuracy", "val_bal_acc": "balanced accuracy"}
#: the displayed columns (Markdown and LaTeX): header -> column of `TuningReport.text`
DISPLAY = {
    "Method": "method_name", "Cell": "cell", "Budget": "budget",
    "Default val": "default_val_text", "Default sel.": "default_acc_text",
    "Tuned trial": "tuned_trial_text", "Tuned val": "tuned_val_text", "Tuned sel.": "tuned_acc_text",
    "Changed hyperparameters": "changed", "Gain": "gain_text",
    "Sel. min / med / max": "acc_spread", "Val min / med / max": "val_spread",
}


@dataclass
class TuningReport:
    """One row per search (`rows`: numbers and texts, the CSV), a caption and numbered notes."""

    rows: pd.DataFrame
    caption: str
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] | None = None


# ------------------------------------------------------------------------------------ input


def load_settings(root: str | Path) -> tuple[dict[str, Any] | None, str]:
    """`tuning.json` of a results folder: (settings, '') or (None, why it is not used)."""
    path = Path(root) / CHOICES_FILE
    if not path.exists():
        return None, f"{CHOICES_FILE} is missing"
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{CHOICES_FILE} is unreadable ({type(exc).__name__})"
    if not isinstance(settings, dict):
        return None, f"{CHOICES_FILE} is not a JSON object"
    return settings, ""


def tuning_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The tuning trials of a runs table (`bench.tune.select.trials`), each search under one method
    name: `load_results` names a run by an ablation variant when its hyperparameters hold the
    variant's overrides, which a sampled trial may do by chance; a search whose trials got different
    names is put back under the registered method."""
    from bench.grid.presets import VARIANTS

    out = trials(runs)
    if out.empty:
        return out
    out["preset"] = out["preset"].fillna("").astype(str) if "preset" in out else ""
    base = out["method"].map(lambda m: VARIANTS.get(m).method if m in VARIANTS else m)
    keys = [base if k == "method" else out[k] for k in GROUP_KEYS]
    mixed = out["method"].groupby(keys, dropna=False).transform("nunique") > 1
    out.loc[mixed, "method"] = base[mixed]
    return out


# ------------------------------------------------------------------------------------ build


def build_tuning(results: Results, settings: dict[str, Any] | None = None, settings_note: str = "",
                 spread_statuses: tuple[str, ...] = ("done",)) -> TuningReport:
    """The tuning report of `results` (see the module doc); `settings` is `tuning.json` (None: the
    budget is counted from the runs, `settings_note` says why). Raises a UsageError when the
    results hold no tuning trial."""
    runs = tuning_runs(results.runs)
    if runs.empty:
        presets = sorted(set(results.runs.get("preset", pd.Series(dtype=str)).dropna().astype(str)) - {""})
        preset = presets[0] if len(presets) == 1 else "P"
        raise UsageError(f"results folder '{results.root}' holds no tuning trials; run `python -m bench tune "
                         f"--preset {preset} ...` first")
    for column in ("selected_val", "selected_acc", "epochs", "val_fraction"):
        runs[column] = pd.to_numeric(runs.get(column, math.nan), errors="coerce")
    runs["status"] = runs["status"].astype(str)
    chosen = chosen_trials(runs).set_index(list(GROUP_KEYS))
    recorded = _recorded_choices(settings)
    notes: list[str] = []
    rows = []
    for key, group in runs.groupby(list(GROUP_KEYS), sort=True, dropna=False):
        rows.append(_search_row(dict(zip(GROUP_KEYS, key)), group, chosen, settings, recorded, notes,
                                spread_statuses))
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["preset", "_cell_order", "_method_order"], kind="mergesort")
    frame = frame.drop(columns=["_cell_order", "_method_order"]).reset_index(drop=True)
    caption = _caption(frame, settings, settings_note, spread_statuses)
    return TuningReport(rows=frame, caption=caption, notes=notes, settings=settings)


def _recorded_choices(settings: dict[str, Any] | None) -> dict[tuple, dict[str, Any]]:
    """tuning.json's `chosen` entries by (method, cell keys), cells normalised as `load_results` does."""
    out = {}
    for entry in (settings or {}).get("chosen", []) or []:
        if not isinstance(entry, dict):
            continue
        try:
            rate = float(entry["noise_rate"])
            cell = (entry["dataset"], float(entry["imbalance"]), entry["noise"] if rate > 0 else "none", rate)
            out[(entry["method"], *cell)] = entry
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _search_row(key: dict[str, Any], group: pd.DataFrame, chosen: pd.DataFrame, settings: dict[str, Any] | None,
                recorded: dict[tuple, dict[str, Any]], notes: list[str],
                spread_statuses: tuple[str, ...]) -> dict[str, Any]:
    method, cell = key["method"], Cell(*(key[k] for k in CELL_KEYS))
    own = settings is not None and settings.get("preset") in (None, "", key["preset"])
    counts = group["status"].value_counts()
    planned = _int(settings.get("trials")) if own else None
    epochs = _int(settings.get("epochs")) if own else None
    if epochs is None and group["epochs"].notna().any():
        epochs = int(group["epochs"].max())
    row: dict[str, Any] = {
        **key, "method_name": _display(method), "cell": cell.label(),
        "search": str(settings.get("search", "")) if own else "",
        "scheduler": str(settings.get("scheduler", "")) if own else "",
        "trials_planned": planned if planned is not None else group["trial"].nunique(),
        "trials_recorded": int(group["trial"].nunique()),
        "trials_done": int(counts.get("done", 0)), "trials_stopped": int(counts.get("stopped", 0)),
        "trials_failed": int(counts.get("failed", 0)), "epochs": epochs,
        "selected_on": ", ".join(sorted(set(group["selected_on"].dropna().astype(str)) - {""}))
        if "selected_on" in group else "",
        "val_fraction": group["val_fraction"].dropna().iloc[0] if group["val_fraction"].notna().any() else math.nan,
    }
    row["budget"] = _budget_text(row)
    default = group[group["trial"] == 0]
    default = default.iloc[0] if len(default) else None
    row["default_status"] = default["status"] if default is not None else "not run"
    row["default_val"] = default["selected_val"] if default is not None else math.nan
    row["default_acc"] = default["selected_acc"] if default is not None else math.nan
    index = tuple(key[k] for k in GROUP_KEYS)
    tuned = chosen.loc[index] if index in chosen.index else None
    row["tuned_trial"] = int(tuned["trial"]) if tuned is not None else None
    row["tuned_run_id"] = str(tuned["run_id"]) if tuned is not None else ""
    row["tuned_val"] = tuned["selected_val"] if tuned is not None else math.nan
    row["tuned_acc"] = tuned["selected_acc"] if tuned is not None else math.nan
    row["changed"] = (_changed(default["hparams"] if default is not None else None, tuned["hparams"])
                      if tuned is not None else "")
    row["gain"] = (row["tuned_acc"] - row["default_acc"]
                   if tuned is not None and row["default_status"] == "done" else math.nan)
    entry = recorded.get((method, *(key[k] for k in CELL_KEYS))) if own else None
    row["tuned_lr"] = row["tuned_weight_decay"] = math.nan
    if entry is not None and tuned is not None:
        if _int(entry.get("trial")) == row["tuned_trial"]:
            row["tuned_lr"] = _float(entry.get("lr"))
            row["tuned_weight_decay"] = _float(entry.get("weight_decay"))
        else:
            notes.append(f"{CHOICES_FILE} records trial {entry.get('trial')} as chosen for {row['method_name']} "
                         f"at {cell.label()}, the rule over runs.csv picks trial {row['tuned_trial']} (the runs "
                         "changed after it was written?)")
    if not math.isnan(row["tuned_lr"]) or not math.isnan(row["tuned_weight_decay"]):
        optim = ", ".join(f"{name}={_value(v)}" for name, v in
                          (("lr", row["tuned_lr"]), ("wd", row["tuned_weight_decay"])) if not math.isnan(v))
        row["changed"] = f"{row['changed'] or 'defaults'}; {optim}"
    spread = group[group["status"].isin(spread_statuses)]
    for name, column in (("acc", "selected_acc"), ("val", "selected_val")):
        values = spread[column].dropna()
        row[f"{name}_n"] = int(len(values))
        row[f"{name}_min"] = values.min() if len(values) else math.nan
        row[f"{name}_median"] = values.median() if len(values) else math.nan
        row[f"{name}_max"] = values.max() if len(values) else math.nan
    _add_texts(row)
    row["_cell_order"] = (cell.dataset, cell.imbalance, cell.noise != "none", cell.noise, cell.noise_rate)
    rank = {m: i for i, m in enumerate(METHODS.names())}
    row["_method_order"] = (rank.get(method, len(rank)), method)
    return row


def _display(method: str) -> str:
    """How a row prints a method (an ablation variant by its display name)."""
    from bench.grid.presets import VARIANTS

    return VARIANTS.get(method).display_name if method in VARIANTS else METHODS.display_name(method)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _value(value: Any) -> str:
    """A hyperparameter value, compact."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _hparams(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _changed(default_text: Any, tuned_text: Any) -> str:
    """The hyperparameters of the tuned trial that differ from trial 0's, as 'k=v, …' ('defaults'
    when none differs; every one of them when trial 0 is missing or unreadable)."""
    tuned = _hparams(tuned_text)
    if tuned is None:
        return "?"
    default = _hparams(default_text) if default_text is not None else None
    if default is None:
        return ", ".join(f"{k}={_value(v)}" for k, v in sorted(tuned.items())) or "defaults"
    parts = [f"{k}={_value(tuned[k])}" for k in sorted(tuned) if k not in default or default[k] != tuned[k]]
    parts += [f"{k} unset" for k in sorted(set(default) - set(tuned))]
    return ", ".join(parts) or "defaults"


def _number(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{DECIMALS}f}"


def _budget_text(row: dict[str, Any]) -> str:
    """'4 × 5 ep, random/asha: 2 done, 1 stopped, 1 failed'."""
    how = "/".join(part for part in (row["search"], row["scheduler"]) if part)
    size = f"{row['trials_planned']} × {row['epochs']} ep" if row["epochs"] is not None else \
        f"{row['trials_planned']} trials"
    counts = [f"{row['trials_done']} done"]
    counts += [f"{row[f'trials_{s}']} {s}" for s in ("stopped", "failed") if row[f"trials_{s}"]]
    unrecorded = row["trials_planned"] - row["trials_recorded"]
    counts += [f"{unrecorded} not run"] if unrecorded > 0 else []
    return f"{size}{', ' + how if how else ''}: {', '.join(counts)}"


def _add_texts(row: dict[str, Any]) -> None:
    status = row["default_status"]
    row["default_val_text"] = _number(row["default_val"]) + (f" ({status})" if status not in ("done", "failed") else "")
    row["default_acc_text"] = _number(row["default_acc"]) + (f" ({status})" if status not in ("done",) else "")
    if status == "failed":
        row["default_val_text"] = "–"
    row["tuned_trial_text"] = "–" if row["tuned_trial"] is None else str(row["tuned_trial"])
    row["tuned_val_text"], row["tuned_acc_text"] = _number(row["tuned_val"]), _number(row["tuned_acc"])
    if row["tuned_trial"] is None:
        row["changed"] = "no trial finished"
    gain = row["gain"]
    row["gain_text"] = "–" if math.isnan(gain) else f"{gain:+.{DECIMALS}f}".replace("-", "−")
    for name in ("acc", "val"):
        values = [row[f"{name}_{s}"] for s in ("min", "median", "max")]
        row[f"{name}_spread"] = "–" if row[f"{name}_n"] == 0 else " / ".join(_number(v) for v in values) + \
            f" (n={row[f'{name}_n']})"


def _caption(frame: pd.DataFrame, settings: dict[str, Any] | None, settings_note: str,
             spread_statuses: tuple[str, ...]) -> str:
    presets = ", ".join(sorted(set(frame["preset"]) - {""})) or "results"
    metrics = sorted({m.strip() for text in frame["selected_on"] for m in text.split(",") if m.strip()})
    if not metrics and settings is not None:
        metrics = [str(settings.get("objective", ""))]
    metric_text = " / ".join(f"{m} ({VAL_TEXT.get(m, m)})" for m in metrics) or "the validation score"
    fractions = sorted(set(frame["val_fraction"].dropna()))
    held_out = (f"a held-out {', '.join(f'{f:.0%}' for f in fractions)} of the noisy training set"
                if fractions else "a held-out split of the noisy training set")
    spread = "done" if spread_statuses == ("done",) else "/".join(spread_statuses)
    parts = [
        f"Tuning ({presets}): the default hyperparameters (trial 0) against the chosen trial of each search.",
        f"The choice uses only the noisy-validation score, {metric_text} on {held_out}, its labels as noisy as "
        "training's: the finished trial with the highest score, ties to the lower trial number.",
        "Test columns are recorded, never selected on; \"sel.\" = test accuracy at the epoch maximising the "
        "validation score.",
        "Gain = tuned − default selected test accuracy (– where trial 0 did not run all epochs).",
        f"Spread = min / median / max over the trials with status {spread}"
        + ("; trials stopped early by the scheduler count in the budget only." if "stopped" not in spread_statuses
           else "."),
    ]
    if frame[["tuned_lr", "tuned_weight_decay"]].notna().any().any():
        parts.append(f"lr and wd (weight decay) of the chosen trial as {CHOICES_FILE} records them, shown whether "
                     "or not they differ from the defaults.")
    if settings is None:
        parts.append(f"Budget counted from runs.csv ({settings_note or CHOICES_FILE + ' is missing'}).")
    return " ".join(parts)


# ----------------------------------------------------------------------------------- render


def _cells(report: TuningReport) -> tuple[list[str], list[list[str]]]:
    headers = list(DISPLAY)
    multi_preset = report.rows["preset"].nunique() > 1
    if multi_preset:
        headers.insert(0, "Preset")
    rows = []
    for _, row in report.rows.iterrows():
        cells = [str(row[column]) for column in DISPLAY.values()]
        rows.append(([str(row["preset"])] if multi_preset else []) + cells)
    return headers, rows


def to_markdown(report: TuningReport) -> str:
    """GitHub Markdown: the caption, the table, numbered notes (no `tabulate` needed)."""
    headers, rows = _cells(report)
    numeric = {"Default val", "Default sel.", "Tuned trial", "Tuned val", "Tuned sel.", "Gain"}
    lines = [report.caption, "", "| " + " | ".join(headers) + " |",
             "|" + "".join("---:|" if h in numeric else "---|" for h in headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines += [""] + [f"{i}. {note}" for i, note in enumerate(report.notes, 1)]
    return "\n".join(lines).rstrip() + "\n"


def to_latex(report: TuningReport) -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""

    headers, rows = _cells(report)
    numeric = {"Default val", "Default sel.", "Tuned trial", "Tuned val", "Tuned sel.", "Gain"}
    spec = "".join("r" if h in numeric else "l" for h in headers)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{latex_escape(report.caption)}}}",
             rf"\label{{tab:{STEM}}}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in headers) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(cell) for cell in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if report.notes:
        notes = "; ".join(f"{i}. {latex_escape(n)}" for i, n in enumerate(report.notes, 1))
        lines.append(rf"\par\footnotesize {notes}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_frame(report: TuningReport) -> pd.DataFrame:
    """The report as a table of numbers and texts, one row per search (what the CSV holds)."""
    return report.rows.copy()


def render(report: TuningReport, fmt: str) -> str:
    if fmt == "md":
        return to_markdown(report)
    if fmt == "latex":
        return to_latex(report)
    if fmt == "csv":
        return to_frame(report).to_csv(index=False)
    raise UsageError(f"unknown table format '{fmt}'; choose one of: {', '.join(FORMATS)}")


def write_tuning(report: TuningReport, out_dir: Path) -> list[Path]:
    """Write the report as tuning.md, tuning.tex and tuning.csv under `out_dir`; returns the paths."""
    return write_formats(lambda fmt: render(report, fmt), out_dir, STEM)


def tuning_report(path: str | Path, preset: str | None = None) -> tuple[Results, TuningReport]:
    """Load a tuning results folder (`load_results`, then `tuning.json`) and build its report."""
    from analysis.results import load_results

    results = load_results(path, preset=preset, trials=True)
    settings, note = load_settings(results.root)
    return results, build_tuning(results, settings, note)
