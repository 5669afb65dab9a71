"""Load a results store (`runs.csv` + `epochs.csv` of one grid folder) for analysis.

A *cell* is one data protocol: (dataset, imbalance ρ, noise model, noise rate). A clean cell
(noise rate 0) is written with noise "none", whatever noise model the grid named, so that
clean cells from different grids and the papers' tables line up. Seeds are paired across
methods: runs of one cell with the same (data seed, train seed) saw bit-identical data.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.core.errors import UsageError
from bench.grid.layout import Cell

#: metric name on the command line -> column of the runs table
METRICS = {"last": "last_acc", "best": "best_acc", "last5": "last5_acc"}
METRIC_LABELS = {"last": "Last", "best": "Best", "last5": "Last-5 mean"}
CELL_KEYS = ("dataset", "imbalance", "noise", "noise_rate")
#: what must agree between runs of one method in one cell for their seeds to be pooled
CONFIG_KEYS = ("backbone", "epochs", "batch_size", "hparams", "order", "meta_per_class")


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
        """Methods present, in the registry's listing order."""
        from analysis.style import method_order

        return method_order(self.runs["method"].unique())

    def scores(self, metric: str) -> pd.DataFrame:
        """One row per finished run: method, cell keys, data_seed, seed, value (the metric)."""
        column = metric_column(metric)
        frame = self.done[["method", *CELL_KEYS, "data_seed", "seed", column]].rename(columns={column: "value"})
        return frame.dropna(subset=["value"]).reset_index(drop=True)

    def cell_matrix(self, metric: str) -> pd.DataFrame:
        """Seed-mean of the metric: rows = cells (as `Cell`), columns = methods (registry order)."""
        scores = self.scores(metric)
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


def load_results(path: str | Path, preset: str | None = None) -> Results:
    """Read `runs.csv` and `epochs.csv` of a results folder (rebuilt from `runs/*.json` if absent).

    Raises a UsageError (one line, with the fix) when the folder is missing, holds no runs,
    or holds no run of `preset`.
    """
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"results folder '{root}' does not exist; run `python -m bench run grid --out {root}` first")
    runs_csv, epochs_csv = root / "runs.csv", root / "epochs.csv"
    try:
        if runs_csv.exists():
            runs = pd.read_csv(runs_csv, dtype={"run_id": str, "hparams": str, "error": str})
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
    records = list((root / "runs").glob("*.json")) if (root / "runs").is_dir() else []
    missing = {"method", "status", *CELL_KEYS, *METRICS.values()} - set(runs.columns)
    if records and (runs.empty or missing):
        raise UsageError(f"'{runs_csv}' is damaged ({len(runs)} rows, {len(records)} run records in runs/); "
                         f"rebuild it with {repair}")
    if records and len(records) != len(runs):
        print(f"bench: warning: '{runs_csv}' has {len(runs)} rows but runs/ holds {len(records)} run records; "
              f"{repair} rebuilds the tables", file=sys.stderr)
    if runs.empty:
        raise UsageError(f"results folder '{root}' holds no runs; run `python -m bench run grid --out {root}` first")
    if missing:
        raise UsageError(f"'{runs_csv}' lacks the columns {', '.join(sorted(missing))}; it is not a bench results table")
    if preset is not None:
        runs = runs[runs["preset"] == preset]
        if runs.empty:
            raise UsageError(f"results folder '{root}' holds no run of preset '{preset}'; drop --preset or pick another")
    runs = _normalise(runs).reset_index(drop=True)
    _check_one_config(runs)
    epochs = epochs[epochs["run_id"].isin(set(runs["run_id"]))].reset_index(drop=True)
    return Results(root=root, runs=runs, epochs=epochs)


def _check_one_config(runs: pd.DataFrame) -> None:
    """Refuse to pool seeds of one method and cell that ran different configurations."""
    present = [k for k in CONFIG_KEYS if k in runs]
    configs = runs.groupby(["method", *CELL_KEYS])[present].nunique(dropna=False)
    mixed = configs[(configs > 1).any(axis=1)]
    if len(mixed):
        method, *cell = mixed.index[0]
        what = ", ".join(k for k in present if mixed.iloc[0][k] > 1)
        raise UsageError(f"method '{method}' ran with different {what} in cell {Cell(*cell).label()}, so its seeds "
                         "cannot be pooled; pass --preset to pick one grid, or keep each configuration in its own "
                         "--out folder")
