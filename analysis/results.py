"""Load a results store (`runs.csv` + `epochs.csv` of one grid folder) for analysis.

A *cell* is one data protocol: (dataset, imbalance ρ, noise model, noise rate). A clean cell
(noise rate 0) is written with noise "none", whatever noise model the grid named, so that
clean cells from different grids and the papers' tables line up. Seeds are paired across
methods: runs of one cell with the same (data seed, train seed) saw bit-identical data.

A *metric* says which epoch of a run counts ("last", "best", "last5", "selected": the epoch that
maximises the run's noisy-validation score, NaN without a validation split); a *measure* says what is
counted at it (`bench.grid.layout.MEASURES`: top-1 on the main test set by default, or top-5,
the ImageNet test set of mini-WebVision, many/medium/few-shot accuracy). Top-1 numbers come
from the runs table; the others from the epochs table: "last" is the value at the run's final
epoch, "last5" the mean over its last 5 epochs, and "best" the value at the run's `best_epoch`,
the epoch with the highest top-1 *test* accuracy. So one epoch is selected per run, by top-1,
for every measure (a run's "best top-5" is its top-5 at its best top-1 epoch, not its highest
top-5), and that selection is on the test set, hence optimistic.

Runs of an ablation variant (`bench.grid.presets.VARIANTS`) record the registered method; they
are named by their variant here (their hyperparameters hold the variant's overrides), so that
every consumer treats a variant as a method of its own. A backbone sweep (a preset with
`backbones`, Dynamic Loss Table 8) holds runs of one method and cell on several backbones: only
a layout with a column per backbone separates them, so `scores` and `cell_matrix` refuse them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.core.errors import UsageError
from bench.grid.layout import MEASURES, Cell
from bench.grid.schema import STATUSES
from bench.tune.select import is_trial

#: metric name on the command line -> column of the runs table
METRICS = {"last": "last_acc", "best": "best_acc", "last5": "last5_acc", "selected": "selected_acc"}
METRIC_LABELS = {"last": "Last", "best": "Best (test-selected)", "last5": "Last-5 mean", "selected": "Selected"}
#: metrics whose runs-table column came later: a table without it reads as NaN (runs without a validation split)
LATER_METRIC_COLUMNS = {"selected_acc": float("nan"), "selected_epoch": -1}
CELL_KEYS = ("dataset", "imbalance", "noise", "noise_rate")
#: what must agree between runs of one method in one cell for their seeds to be pooled, in a runs table
#: written before the `config_key` column (the hash of the whole config without its seeds) existed
CONFIG_KEYS = ("backbone", "epochs", "batch_size", "hparams", "order", "meta_per_class")
#: config fields that may differ between pooled seeds: the seeds, and what is recorded but not hashed
POOLED_FIELDS = ("seed", "data.data_seed", "preset")


def parse_cell(text: str) -> Cell:
    """'cifar10:100:lt-prior:0.3' or 'cifar10:10:clean' -> Cell (UsageError when malformed)."""
    parts = text.split(":")
    try:
        if len(parts) == 3 and parts[2] in ("clean", "none"):
            return Cell(parts[0], float(parts[1]), "none", 0.0)
        if len(parts) == 4:
            rate = float(parts[3])
            return Cell(parts[0], float(parts[1]), parts[2] if rate > 0 else "none", rate)
    except ValueError:
        pass
    raise UsageError(f"malformed cell '{text}': expected DATASET:RHO:NOISE:RATE (e.g. cifar10:100:lt-prior:0.3) "
                     "or DATASET:RHO:clean")


def in_cell(runs: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    """The rows of `runs` (runs table, normalised) that belong to `cell`."""
    return runs[(runs["dataset"] == cell.dataset) & (runs["imbalance"] == cell.imbalance)
                & (runs["noise"] == cell.noise) & (runs["noise_rate"] == cell.noise_rate)]


def metric_column(metric: str) -> str:
    """The runs-table column of a metric name, or a UsageError listing the choices."""
    if metric not in METRICS:
        raise UsageError(f"unknown metric '{metric}'; choose one of: {', '.join(METRICS)}")
    return METRICS[metric]


def measure_column(measure: str) -> str:
    """The epochs-table column of a measure name ("" = top-1 on the main test set), or a UsageError."""
    if measure not in MEASURES:
        raise UsageError(f"unknown measure '{measure}'; choose one of: {', '.join(m for m in MEASURES if m)}")
    return MEASURES[measure]


def is_top1(measure: str) -> bool:
    """Whether `measure` is the main test set's top-1 accuracy (what the runs table holds)."""
    return measure_column(measure) == MEASURES[""]


def measure_values(runs: pd.DataFrame, epochs: pd.DataFrame, metric: str, measure: str) -> pd.Series:
    """The `metric` of each of `runs` for `measure`, indexed like `runs` (NaN where the epochs
    table lacks it): top-1 from the runs table; any other measure from the epochs table at the
    run's final epoch ("last"), at its `best_epoch` ("best", the epoch of the highest top-1 test
    accuracy), or averaged over its last 5 epochs ("last5")."""
    column = metric_column(metric)
    if is_top1(measure):
        return pd.to_numeric(runs[column], errors="coerce").astype(float)
    wanted = measure_column(measure)
    if wanted not in epochs.columns or runs.empty:
        return pd.Series(float("nan"), index=runs.index, dtype=float)
    rows = epochs.loc[epochs["run_id"].isin(set(runs["run_id"])), ["run_id", "epoch", wanted]]
    rows = rows.assign(epoch=pd.to_numeric(rows["epoch"]), value=pd.to_numeric(rows[wanted], errors="coerce"))
    rows = rows.sort_values(["run_id", "epoch"])
    if metric == "last":
        per_run = rows.groupby("run_id").tail(1).set_index("run_id")["value"]
    elif metric == "last5":
        per_run = rows.groupby("run_id")["value"].apply(lambda v: v.tail(5).mean(skipna=False))
    else:  # best: the epoch that top-1 chose; selected: the one the validation score chose
        epoch_column = "selected_epoch" if metric == "selected" else "best_epoch"
        chosen = pd.to_numeric(runs.set_index("run_id")[epoch_column], errors="coerce")
        at_best = rows[rows["epoch"].to_numpy() == chosen.reindex(rows["run_id"]).to_numpy()]
        per_run = at_best.drop_duplicates("run_id", keep="last").set_index("run_id")["value"]
    return runs["run_id"].map(per_run).astype(float)


@dataclass
class Results:
    """The runs and epochs tables of one results folder, cells normalised (see module doc)."""

    root: Path
    runs: pd.DataFrame
    epochs: pd.DataFrame

    @property
    def done(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "done"]

    def cells(self) -> list[Cell]:
        """The cells present in the runs (any status), sorted by dataset, ρ, then clean first, noise, rate."""
        keys = self.runs[list(CELL_KEYS)].drop_duplicates().itertuples(index=False)
        return sorted((Cell(*k) for k in keys),
                      key=lambda c: (c.dataset, c.imbalance, c.noise != "none", c.noise, c.noise_rate))

    def methods(self) -> list[str]:
        """Methods present, in the registry's listing order; an ablation variant right after its
        method (variants of one method by name)."""
        from analysis.style import method_order
        from bench.grid.presets import VARIANTS

        names = set(self.runs["method"].unique())
        bases = method_order({VARIANTS.get(n).method if n in VARIANTS else n for n in names})
        out = []
        for base in bases:
            out += [base] if base in names else []
            out += sorted(n for n in names if n in VARIANTS and VARIANTS.get(n).method == base)
        return out

    def values(self, runs: pd.DataFrame, metric: str, measure: str = "") -> pd.Series:
        """The metric of each of `runs` (rows of `self.runs`) for `measure` (see the module doc)."""
        return measure_values(runs, self.epochs, metric, measure)

    def scores(self, metric: str, measure: str = "") -> pd.DataFrame:
        """One row per finished run: method, cell keys, data_seed, seed, value (the metric of the
        measure; top-1 on the main test set by default, see the module doc)."""
        refuse_backbone_sweep(self.done)
        frame = self.done[["method", *CELL_KEYS, "data_seed", "seed"]].assign(
            value=self.values(self.done, metric, measure))
        return frame.dropna(subset=["value"]).reset_index(drop=True)

    def cell_matrix(self, metric: str, measure: str = "") -> pd.DataFrame:
        """Seed-mean of the metric: rows = cells (as `Cell`), columns = methods (registry order)."""
        scores = self.scores(metric, measure)
        table = scores.groupby(["method", *CELL_KEYS])["value"].mean().unstack("method")
        table.index = [Cell(*key) for key in table.index]
        return table[[m for m in self.methods() if m in table.columns]]


def _normalise(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    runs["noise"] = runs["noise"].where(runs["noise_rate"] > 0, "none")
    runs["imbalance"] = runs["imbalance"].astype(float)
    runs["noise_rate"] = runs["noise_rate"].astype(float)
    runs["error"] = runs["error"].fillna("").astype(str) if "error" in runs else ""
    return runs


def load_results(path: str | Path, preset: str | None = None, trials: bool = False) -> Results:
    """Read `runs.csv` and `epochs.csv` of a results folder (rebuilt from `runs/*.json` if absent).

    The trials of a `bench tune` search (a non-empty `tune_trial`) differ in their hyperparameters by
    design and are never pooled as seeds: they are left out unless `trials` (the tuning report).
    Raises a UsageError (one line, with the fix) when the folder is missing, holds no runs,
    or holds no run of `preset`.
    """
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"results folder '{root}' does not exist; run `python -m bench run grid --out {root}` first")
    runs_csv, epochs_csv = root / "runs.csv", root / "epochs.csv"
    try:
        if runs_csv.exists():
            runs = pd.read_csv(runs_csv, dtype={"run_id": str, "hparams": str, "error": str, "config_key": str,
                                                 "tune_trial": str})
            epochs = (pd.read_csv(epochs_csv, dtype={"run_id": str}) if epochs_csv.exists()
                      else pd.DataFrame(columns=["run_id", "epoch", "test_acc"]))
        elif (root / "runs").is_dir():
            from bench.grid.store import ResultsStore

            runs, epochs = ResultsStore(root).tables()
        else:
            runs = pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UsageError(f"cannot read the results tables in '{root}' ({exc}); rebuild them from the per-run "
                         f"records with `python -m bench results repair --results {root}`") from None
    repair = f"`python -m bench results repair --results {root}`"
    stems = ({p.stem for p in (root / "runs").glob("*.json")} if (root / "runs").is_dir() else None)
    for column, empty in LATER_METRIC_COLUMNS.items():
        if not runs.empty and column not in runs.columns:
            runs = runs.assign(**{column: empty})
    missing = {"method", "status", *CELL_KEYS, *METRICS.values()} - set(runs.columns)
    if stems and (runs.empty or missing):
        raise UsageError(f"'{runs_csv}' is damaged ({len(runs)} rows, {len(stems)} run records in runs/); "
                         f"rebuild it with {repair}")
    if runs.empty:
        raise UsageError(f"results folder '{root}' holds no runs; run `python -m bench run grid --out {root}` first")
    if missing:
        raise UsageError(f"'{runs_csv}' lacks the columns {', '.join(sorted(missing))}; "
                         "it is not a bench results table")
    if runs_csv.exists():
        damage = _table_damage(runs_csv, runs, stems)
        if damage:
            raise UsageError(f"'{runs_csv}' is damaged ({damage}); rebuild it with {repair}")
    if preset is not None:
        runs = runs[runs["preset"] == preset]
        if runs.empty:
            raise UsageError(f"results folder '{root}' holds no run of preset '{preset}'; "
                             "drop --preset or pick another")
    trial_rows = is_trial(runs)
    if not trials and trial_rows.all():
        raise UsageError(f"results folder '{root}' holds only the trials of a `bench tune` search; see them with "
                         f"`python -m bench table --layout tuning --results {root}`")
    if not trials:
        runs = runs[~trial_rows]
    runs = _name_variants(_normalise(runs)).reset_index(drop=True)
    _check_one_config(runs[~is_trial(runs)], root)
    epochs = epochs[epochs["run_id"].isin(set(runs["run_id"]))].reset_index(drop=True)
    return Results(root=root, runs=runs, epochs=epochs)


def _table_damage(path: Path, runs: pd.DataFrame, stems: set[str] | None) -> str:
    """What is wrong with a runs table read from `path` ('' if nothing): a cut-off last line, a cell
    that is not a number in a numeric column, an unknown status, a run listed twice, or (when the folder
    has its run records, `stems`: the record file names) run ids that disagree with the records. The
    last check is cheap (file names, no record is parsed) and catches a table truncated at a line
    boundary, which would otherwise show finished runs as "not run"."""
    from bench.grid.schema import RUN_COLUMNS, TEXT_COLUMNS

    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(size - 1, 0))
        if size and f.read(1) != b"\n":
            return "its last line is cut off"
    for column in RUN_COLUMNS:
        if column not in runs or column in TEXT_COLUMNS or column == "meta_set_used":
            continue
        cells = runs[column]
        if pd.api.types.is_numeric_dtype(cells):
            continue
        numbers = pd.to_numeric(cells, errors="coerce")
        wrong = numbers.isna() & cells.notna() & (cells.astype(str).str.strip() != "")
        if wrong.any():
            row = int(wrong.to_numpy().nonzero()[0][0])
            return (f"column {column} holds {cells.iloc[row]!r}, not a number, in the row of run "
                    f"{runs['run_id'].iloc[row]}")
    unknown = ~runs["status"].isin(STATUSES)
    if unknown.any():
        return f"unknown status {runs['status'][unknown].iloc[0]!r}"
    ids = runs["run_id"].astype(str) if "run_id" in runs else pd.Series(dtype=str)
    if ids.duplicated().any():
        return f"run {ids[ids.duplicated()].iloc[0]} has several rows"
    if stems is not None:
        lacking, extra = stems - set(ids), set(ids) - stems
        if lacking or extra:
            parts = [f"{len(runs)} rows, {len(stems)} run records in runs/"]
            if lacking:
                parts.append(f"{len(lacking)} recorded runs have no row, e.g. {min(lacking)}")
            if extra:
                parts.append(f"{len(extra)} rows have no record, e.g. {min(extra)}")
            return "; ".join(parts)
    return ""


def _name_variants(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs of an ablation variant named by the variant (its method and its overrides in the
    run's hyperparameters); other runs keep their method."""
    import json

    from bench.grid.presets import VARIANTS

    variants = [(name, VARIANTS.get(name)) for name in VARIANTS]
    if not variants or "hparams" not in runs:
        return runs
    runs = runs.copy()
    for i, (method, text) in enumerate(zip(runs["method"], runs["hparams"])):
        mine = [(name, v) for name, v in variants if v.method == method]
        if not mine or not isinstance(text, str) or not text:
            continue
        try:
            hparams = json.loads(text)
        except json.JSONDecodeError:
            continue
        for name, variant in mine:
            if all(k in hparams and hparams[k] == value for k, value in variant.hparams.items()):
                runs.iloc[i, runs.columns.get_loc("method")] = name
                break
    return runs


def _sweeps(presets: pd.Series) -> pd.Series:
    """Whether each run's preset is a backbone sweep (declares `backbones`)."""
    from bench.grid.presets import PRESETS

    def sweep(name: object) -> bool:
        return isinstance(name, str) and name in PRESETS and bool(PRESETS.get(name).backbones)

    return presets.map(sweep) if len(presets) else presets.astype(bool)


def refuse_backbone_sweep(runs: pd.DataFrame) -> None:
    """Scores pool seeds per method and cell: refuse runs of one method and cell on several backbones."""
    if "backbone" not in runs or runs.empty:
        return
    counts = runs.groupby(["method", *CELL_KEYS])["backbone"].nunique()
    if (counts > 1).any():
        method, *cell = counts[counts > 1].index[0]
        raise UsageError(f"method '{method}' ran on several backbones in cell {Cell(*cell).label()} (a backbone "
                         "sweep, e.g. dl-table8): statistics and plots would pool them; `bench table` with the "
                         "sweep's layout shows one column per backbone, or keep each backbone in its own --out folder")


def _check_one_config(runs: pd.DataFrame, root: Path | None = None) -> None:
    """Refuse to pool seeds of one method and cell that ran different configurations. Runs of a
    backbone sweep may differ in backbone (each backbone is checked on its own). Failed runs take no
    part (they stay in the runs table, counted as failed).

    The `config_key` column (a hash of the run's whole config less `POOLED_FIELDS`) is compared, so
    every config field counts, a field added later included; a table written before that column
    existed falls back to `CONFIG_KEYS` (with a note when the records are there to add it)."""
    if "status" in runs:
        runs = runs[runs["status"] == "done"]
    keyed = "config_key" in runs and len(runs) and runs["config_key"].map(
        lambda v: isinstance(v, str) and bool(v)).all()
    present = ["config_key"] if keyed else [k for k in CONFIG_KEYS if k in runs]
    if not keyed and len(runs) and root is not None and (root / "runs").is_dir():
        print(f"bench: note: '{root / 'runs.csv'}' predates its config_key column, so seeds are pooled when "
              f"{', '.join(CONFIG_KEYS)} agree, not the whole configuration; `python -m bench results repair "
              f"--results {root}` adds it", file=sys.stderr)
    keys = ["method", *CELL_KEYS]
    if "backbone" in runs and "preset" in runs and len(runs):
        sweep = _sweeps(runs["preset"])
        per_backbone = sweep.groupby([runs[k] for k in keys]).transform("all")
        runs = runs.assign(_sweep_backbone=runs["backbone"].where(per_backbone, ""))
        keys.append("_sweep_backbone")
    configs = runs.groupby(keys)[present].nunique(dropna=False)
    mixed = configs[(configs > 1).any(axis=1)]
    if len(mixed):
        method, *cell = mixed.index[0][:1 + len(CELL_KEYS)]
        if keyed:
            group = runs.set_index(keys).loc[[mixed.index[0]]]
            what = _config_difference(root, group.drop_duplicates("config_key")["run_id"].tolist()[:2])
        else:
            what = ", ".join(k for k in present if mixed.iloc[0][k] > 1)
        raise UsageError(f"method '{method}' ran with different {what} in cell {Cell(*cell).label()}, so its seeds "
                         "cannot be pooled; pass --preset to pick one grid, or keep each configuration in its own "
                         "--out folder")


def _flat(config: dict, prefix: str = "") -> dict[str, object]:
    """A nested config as {'optim.lr': 0.1, ...}."""
    out: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "hparams":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _config_difference(root: Path | None, run_ids: list[str]) -> str:
    """The config fields in which two runs differ, read from their records ('configuration' if the
    records cannot be read)."""
    import json

    try:
        a, b = (_flat(json.loads((root / "runs" / f"{rid}.json").read_text())["config"]) for rid in run_ids)
    except (TypeError, OSError, ValueError, KeyError):
        return f"configuration (config_key differs between runs {' and '.join(run_ids)})"
    fields = [k for k in sorted(set(a) | set(b)) if k not in POOLED_FIELDS and a.get(k) != b.get(k)]
    if not fields:
        return f"configuration (config_key differs between runs {' and '.join(run_ids)})"
    return ", ".join(f"{k} ({a.get(k)!r} vs {b.get(k)!r})" for k in fields[:3])
