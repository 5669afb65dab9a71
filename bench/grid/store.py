"""The results store of a grid: one JSON record per run, and tables derived from them.

Layout under the grid's folder:
- `runs/<run_id>.json`: the full record (config, environment, git commit, per-epoch history);
  written atomically when a run ends; a record with status "done" is the run's done marker.
- `runs.csv`: one row per run. `epochs.csv`: one row per run and epoch. Their columns are
  defined in `bench.grid.schema`.
- `runs.parquet` / `epochs.parquet`: snapshots of the two tables, written when a command that
  wrote runs ends (`finalize`) and by `repair`; in between they may lag behind the CSVs.

Write path: `write(record)` writes the record atomically first, then appends the run's epoch rows
to `epochs.csv` and its row to `runs.csv` (one write call each, flushed and fsynced; epochs first,
so a run id in `runs.csv` means its epoch rows are complete). The work per write does not grow with
the number of finished runs. Appended rows are in write order; `finalize` sorts the tables (runs by
run id, epochs by run id and epoch), and a full rebuild (`rebuild_tables`) gives the same files.

The tables are checked once per store object, on its first write (or `finalize`): the CSVs are
read, and the run ids in `runs.csv` are compared with the record files in `runs/` (by file name).
A missing, unparsable or torn table (no trailing newline: a killed append), a disagreement (a record
without a row, a row without a record) or a leftover `.tables-rewrite` marker makes the store
rebuild both tables from the records, so a killed driver never leaves damaged tables behind. Two
rare cases rewrite a whole CSV (atomically, from the CSVs, parsing no record): a run written again
(a failed run re-run) replaces its old rows, under the `.tables-rewrite` marker; a run that brings
a new epoch diagnostic key widens the `epochs.csv` header, older rows getting empty cells.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import UsageError
from bench.grid.schema import (
    EPOCH_COLUMNS,
    RUN_COLUMNS,
    TEXT_COLUMNS,
    epoch_header,
    epoch_rows,
    extra_epoch_keys,
    run_row,
)
from bench.train.checkpoint import atomic_write_bytes, atomic_write_json

__all__ = ["EPOCH_COLUMNS", "RUN_COLUMNS", "ResultsStore", "run_row"]

TABLES = ("runs", "epochs")
SORT_KEYS = {"runs": ["run_id"], "epochs": ["run_id", "epoch"]}
REWRITE_MARKER = ".tables-rewrite"
# pandas 3 parses floats exactly by default (and deprecates the option); older ones need it
_EXACT_FLOATS: dict[str, Any] = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def _invalid(record: Any, stem: str) -> str:
    """Why a parsed record cannot be used ('' if it can)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("run_id") != stem:
        return f"run_id {record.get('run_id')!r} does not match the file name"
    if record.get("status") not in ("done", "failed"):
        return f"unknown status {record.get('status')!r}"
    config = record.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("data"), dict):
        return "no config"
    return ""


def _rows_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as `DataFrame.to_csv(index=False)` writes them, without the header ('' for no rows)."""
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, header=False) if rows else ""


def _cells(text: str) -> pd.DataFrame:
    """A CSV table with every cell kept as the text written, to rewrite rows unchanged."""
    return pd.read_csv(io.StringIO(text), dtype=str, na_filter=False)


def _typed(text: str, sort_keys: list[str]) -> pd.DataFrame:
    """A CSV table with typed columns (text columns stay text, empty cells of others are NaN), sorted."""
    columns = next(csv.reader(io.StringIO(text)))
    frame = pd.read_csv(io.StringIO(text), dtype={c: str for c in columns if c in TEXT_COLUMNS},
                        keep_default_na=False, na_values={c: [""] for c in columns if c not in TEXT_COLUMNS},
                        low_memory=False, **_EXACT_FLOATS)
    return frame.sort_values([k for k in sort_keys if k in frame], kind="stable").reset_index(drop=True)


class ResultsStore:
    """Reads and writes the store of one grid (see the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.records_dir = self.root / "runs"
        # called after each write with the record and the seconds the write took
        self.listeners: list[Callable[[dict[str, Any], float], None]] = []
        # work done, for tests and benchmarks: records JSON-parsed, table rows read and written
        self.stats = {"records_parsed": 0, "rows_read": 0, "rows_written": 0, "bytes_written": 0}
        self._ids: set[str] | None = None  # run ids in runs.csv; None until the tables are checked
        self._epoch_columns: list[str] = []  # the header of epochs.csv
        self._sizes: dict[str, int] = {}  # the size this object left each CSV at

    def ensure_writable(self) -> None:
        """Create the folder and prove it is writable, or raise a UsageError naming the fix."""
        try:
            self.records_dir.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise UsageError(
                f"cannot write results to '{self.root}' ({exc.strerror or exc}); "
                "pass --out with a writable folder"
            ) from None

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    def scan(self) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
        """(valid run records sorted by run id, [(path, why)] of records that cannot be used)."""
        good, bad = [], []
        for path in sorted(self.records_dir.glob("*.json")) if self.records_dir.exists() else []:
            try:
                self.stats["records_parsed"] += 1
                record = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                bad.append((path, f"unreadable: {exc}"))
                continue
            why = _invalid(record, path.stem)
            if why:
                bad.append((path, why))
            else:
                good.append(record)
        return good, bad

    def records(self) -> list[dict[str, Any]]:
        """All valid run records, sorted by run id (see `scan` for the others)."""
        return self.scan()[0]

    def repair(self) -> dict[str, Any]:
        """Move unusable records to `runs/corrupt/` (kept, never deleted), drop temporary files left
        by interrupted writes, and rebuild the tables from the records, parquet snapshots included
        (`rebuild_tables` ends as `finalize` does). Returns what it did."""
        good, bad = self.scan()
        moved = []
        for path, why in bad:
            target = self.records_dir / "corrupt" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)
            moved.append({"file": str(path.name), "why": why, "moved_to": str(target)})
        leftovers = [p for folder in (self.root, self.records_dir, self.checkpoint_dir) if folder.exists()
                     for p in folder.glob(".*.tmp")]
        for path in leftovers:
            path.unlink(missing_ok=True)
        self.rebuild_tables()
        done = sum(r.get("status") == "done" for r in good)
        return {"records": len(good), "done": done, "failed": len(good) - done, "moved": moved,
                "temporary_files_removed": len(leftovers),
                "epochs": sum(len(r.get("epochs", [])) for r in good)}

    def completed_ids(self) -> set[str]:
        """Ids of runs that finished with status 'done' (failed runs are retried)."""
        return {r["run_id"] for r in self.records() if r.get("status") == "done"}

    def write(self, record: dict[str, Any]) -> None:
        """Persist one finished run (its record first), then add it to the tables (module docstring)."""
        start = time.perf_counter()
        run_id = record["run_id"]
        path = self.records_dir / f"{run_id}.json"
        self._forget_tables_if_changed()
        leftover_marker = self._ids is None and self._marker.exists()
        # Written again: its rows get replaced. The marker, set before the record changes, makes a
        # command killed before the tables are rewritten leave a rebuild to the next one.
        marked = path.exists()
        if marked:
            atomic_write_bytes(self._marker, f"{run_id}\n".encode())
        atomic_write_json(path, record)
        if self._ensure_tables(skip=run_id, leftover_marker=leftover_marker) and not _invalid(record, run_id):
            if run_id in self._ids and not marked:
                atomic_write_bytes(self._marker, f"{run_id}\n".encode())
                marked = True
            self._add(record)
        if marked:
            self._marker.unlink(missing_ok=True)
        seconds = time.perf_counter() - start
        for listener in self.listeners:
            listener(record, seconds)

    def finalize(self) -> None:
        """Sort both CSVs and write them with the parquet snapshots (each file atomically).

        Called once when a command that wrote runs ends, and (in effect) by `repair`."""
        if not self._ensure_tables():
            return  # rebuilt from the records: already final
        texts = []
        for name in TABLES:
            data = self._csv(name).read_bytes()
            texts.append(data.decode())
            self.stats["rows_read"] += data.count(b"\n") - 1
        self._write_final(*texts)

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(runs, epochs) data frames built from the records."""
        records = self.records()
        runs = pd.DataFrame([run_row(r) for r in records], columns=RUN_COLUMNS)
        rows = [row for r in records for row in epoch_rows(r)]
        epochs = pd.DataFrame(rows, columns=epoch_header(extra_epoch_keys(rows)))
        return runs, epochs

    def rebuild_tables(self) -> None:
        """Rebuild both tables from the records: the same files as the writes then `finalize`."""
        runs, epochs = self.tables()
        self._write_final(runs.to_csv(index=False), epochs.to_csv(index=False))
        self._marker.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------ internals

    @property
    def _marker(self) -> Path:
        return self.root / REWRITE_MARKER

    def _csv(self, name: str) -> Path:
        return self.root / f"{name}.csv"

    def _forget_tables_if_changed(self) -> None:
        """Check the tables again if a CSV is not the size this object left it at."""
        if self._ids is None:
            return
        for name in TABLES:
            try:
                if self._csv(name).stat().st_size != self._sizes.get(name):
                    self._ids = None
            except OSError:
                self._ids = None

    def _ensure_tables(self, skip: str | None = None, leftover_marker: bool | None = None) -> bool:
        """Make the in-memory view of the tables current: True if the CSVs were consistent (or
        already known), False if they had to be rebuilt from the records (module docstring).
        `skip`: the run being written, whose record may be newer than the tables."""
        self._forget_tables_if_changed()
        if self._ids is not None:
            return True
        if leftover_marker is None:
            leftover_marker = self._marker.exists()
        if not leftover_marker and self._load_tables(skip):
            return True
        self.rebuild_tables()
        return False

    def _load_tables(self, skip: str | None) -> bool:
        """Read both CSVs and check them against the record files; False if they need a rebuild."""
        frames, sizes = {}, {}
        for name in TABLES:
            try:
                data = self._csv(name).read_bytes()
                text = data.decode()
                if not text.endswith("\n"):
                    return False  # a torn append
                header = next(csv.reader(io.StringIO(text)))
                frames[name] = _cells(text)
            except (OSError, UnicodeDecodeError, ValueError, csv.Error, StopIteration):
                return False  # pandas' parser errors are ValueErrors
            if list(frames[name].columns) != header:
                return False
            sizes[name] = len(data)
            self.stats["rows_read"] += len(frames[name])
        runs, epochs = frames["runs"], frames["epochs"]
        columns = list(epochs.columns)
        if list(runs.columns) != RUN_COLUMNS or columns != epoch_header(columns[len(EPOCH_COLUMNS):]):
            return False
        ids = set(runs["run_id"])
        if len(ids) != len(runs) or not set(epochs["run_id"]) <= ids:
            return False
        stems = {p.stem for p in self.records_dir.glob("*.json")} if self.records_dir.is_dir() else set()
        if (stems ^ ids) - {skip}:
            return False  # a record without a row, or a row without a record
        self._ids, self._epoch_columns, self._sizes = ids, columns, sizes
        return True

    def _add(self, record: dict[str, Any]) -> None:
        """Add one run's rows to the checked tables: appended, or rewritten when the run has rows
        already or brings a new epoch column."""
        run_id = record["run_id"]
        rows = epoch_rows(record)
        columns = self._epoch_columns
        if not extra_epoch_keys(rows) <= set(columns):
            columns = epoch_header(set(columns[len(EPOCH_COLUMNS):]) | extra_epoch_keys(rows))
        epoch_text = _rows_csv(rows, columns)
        run_text = _rows_csv([run_row(record)], RUN_COLUMNS)
        rewrite = run_id in self._ids
        if rewrite or columns != self._epoch_columns:
            old = self._read_cells("epochs")
            if rewrite:
                old = old[old["run_id"] != run_id]
            old = old.reindex(columns=columns, fill_value="")
            self._replace("epochs", old.to_csv(index=False) + epoch_text, len(old) + len(rows))
            self._epoch_columns = columns
        else:
            self._append("epochs", epoch_text, len(rows))
        if rewrite:
            old = self._read_cells("runs")
            old = old[old["run_id"] != run_id]
            self._replace("runs", old.to_csv(index=False) + run_text, len(old) + 1)
        else:
            self._append("runs", run_text, 1)
        self._ids.add(run_id)

    def _read_cells(self, name: str) -> pd.DataFrame:
        frame = _cells(self._csv(name).read_text())
        self.stats["rows_read"] += len(frame)
        return frame

    def _append(self, name: str, text: str, rows: int) -> None:
        """Append rows to a CSV with one write call, flushed and fsynced."""
        if not text:
            return
        data = text.encode()
        with open(self._csv(name), "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            self._sizes[name] = f.tell()
        self.stats["rows_written"] += rows
        self.stats["bytes_written"] += len(data)

    def _replace(self, name: str, text: str, rows: int) -> None:
        data = text.encode()
        atomic_write_bytes(self._csv(name), data)
        self._sizes[name] = len(data)
        self.stats["rows_written"] += rows
        self.stats["bytes_written"] += len(data)

    def _write_final(self, runs_text: str, epochs_text: str) -> None:
        """Write both tables sorted, as CSV and parquet, and remember them as checked."""
        frames = {name: _typed(text, SORT_KEYS[name]) for name, text in zip(TABLES, (runs_text, epochs_text))}
        for name, frame in frames.items():
            self._replace(name, frame.to_csv(index=False), len(frame))
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            atomic_write_bytes(self.root / f"{name}.parquet", buffer.getvalue())
            self.stats["bytes_written"] += buffer.getbuffer().nbytes
        self._ids = set(frames["runs"]["run_id"])
        self._epoch_columns = list(frames["epochs"].columns)
