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

Hardening (the store never wedges):
- A record is validated against the tables' schema (`bench.grid.schema.validate_record`: the type
  and range of every column) before it is accepted: `write` refuses an invalid one with an
  `InvalidRecordError` and writes nothing; `scan` lists record files that fail it as unusable, so a
  rebuild never sees them, and `repair` moves them to `runs/corrupt/` and always finishes.
- Every file the store writes goes through `_write_file` (atomic) or `_append`; an OSError there
  (disk full, permission lost) becomes a `StoreWriteError`: one line naming the path and what to
  free. Records already written stay intact, a torn append is cut back to its last complete row,
  and `finalize` after a failed write leaves the tables to the next command's check (which
  rebuilds them if needed), so the run in flight resumes from its checkpoint when the command is
  run again.
- Files are created with the mode the user's umask allows (0o666 & ~umask), so a shared `--out`
  stays group-readable where the umask says so (a bare `tempfile.mkstemp` would give 0o600).
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from bench.core.errors import UsageError
from bench.grid.schema import (
    EPOCH_COLUMNS,
    FINAL_STATUSES,
    RUN_COLUMNS,
    TEXT_COLUMNS,
    epoch_header,
    epoch_rows,
    extra_epoch_keys,
    run_row,
    validate_record,
)
from bench.train.checkpoint import atomic_write_bytes

__all__ = ["EPOCH_COLUMNS", "RUN_COLUMNS", "InvalidRecordError", "ResultsStore", "StoreWriteError", "run_row"]

TABLES = ("runs", "epochs")
SORT_KEYS = {"runs": ["run_id"], "epochs": ["run_id", "epoch"]}
REWRITE_MARKER = ".tables-rewrite"
# pandas 3 parses floats exactly by default (and deprecates the option); older ones need it
_EXACT_FLOATS: dict[str, Any] = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


_RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


class StoreWriteError(UsageError):
    """A file of the store could not be written (disk full, permission lost): one line naming the path
    and what to do. The records written before stay intact; the run in flight resumes when the same
    command is run again. A UsageError, so the CLI prints it as one line and exits non-zero."""


class InvalidRecordError(UsageError):
    """A run record that does not fit the tables' schema; the store refused it and wrote nothing."""


def _invalid(record: Any, stem: str) -> str:
    """Why a parsed record cannot be used ('' if it can): the file name and the schema."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("run_id") != stem:
        return f"run_id {record.get('run_id')!r} does not match the file name"
    return validate_record(record)


def _write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, with the umask's mode (`atomic_write_bytes`); every whole-file
    write of the store goes through here."""
    atomic_write_bytes(path, data)


def _append_file(path: Path, data: bytes) -> int:
    """Append `data` to `path` (created with the umask's mode), fsynced; returns the new size. On an
    error the file is cut back to its size before, so a failed append leaves no partial row (best
    effort: the next check of the tables rebuilds them from the records anyway)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _json_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()


def _write_failed(exc: OSError, path: Path, root: Path) -> NoReturn:
    """Raise the one-line StoreWriteError for an OSError met while writing `path` of the store at `root`."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free disk space on the file system of '{root}' (or raise the quota)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"restore write permission on '{root}' and its runs/ folder"
    else:
        fix = f"make '{root}' writable again"
    raise StoreWriteError(
        f"cannot write '{path}' ({reason}): {fix}, then run the same command again; the finished runs "
        "stored so far are kept and the others run again (from their checkpoints where they have one)"
    ) from None


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
        self._failed = False  # a write failed: finalize leaves the tables to the next command
        self._target: Path | None = None  # the file being written, named when writing it fails

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
            record, why = self._read(path)
            if why:
                bad.append((path, why))
            else:
                good.append(record)
        return good, bad

    def record(self, run_id: str) -> dict[str, Any] | None:
        """The valid record of one run, or None (not stored, or unusable: see `scan`)."""
        record, why = self._read(self.records_dir / f"{run_id}.json")
        return None if why else record

    def _read(self, path: Path) -> tuple[Any, str]:
        """(the record in `path`, '') or (None, why it cannot be used)."""
        try:
            self.stats["records_parsed"] += 1
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return None, f"unreadable: {exc}"
        why = _invalid(record, path.stem)
        return (None, why) if why else (record, "")

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
            with self._writing(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                path.replace(target)
            moved.append({"file": str(path.name), "why": why, "moved_to": str(target)})
        leftovers = [p for folder in (self.root, self.records_dir, self.checkpoint_dir) if folder.exists()
                     for p in folder.glob(".*.tmp")]
        for path in leftovers:
            path.unlink(missing_ok=True)
        self.rebuild_tables()
        done = sum(r.get("status") == "done" for r in good)
        failed = sum(r.get("status") == "failed" for r in good)
        return {"records": len(good), "done": done, "failed": failed, "stopped": len(good) - done - failed,
                "moved": moved, "temporary_files_removed": len(leftovers),
                "epochs": sum(len(r.get("epochs", [])) for r in good)}

    def completed_ids(self) -> set[str]:
        """Ids of runs that ended for good: status 'done', or 'stopped' early by a tuning scheduler (failed
        runs are retried)."""
        return {r["run_id"] for r in self.records() if r.get("status") in FINAL_STATUSES}

    def write(self, record: dict[str, Any]) -> None:
        """Persist one finished run (its record first, then its checkpoint deleted if it is done), then add it
        to the tables (module docstring).

        Raises InvalidRecordError (nothing written) for a record that does not fit the tables, and
        StoreWriteError when a file cannot be written (disk full, permission lost)."""
        start = time.perf_counter()
        run_id = record.get("run_id") if isinstance(record, dict) else None
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise InvalidRecordError(f"refused to store a run record with run_id {run_id!r}: not a run id; "
                                     "nothing was written")
        why = validate_record(record)
        try:
            data = _json_bytes(record) if not why else b""
        except (TypeError, ValueError) as exc:
            why = f"not JSON-serialisable ({exc})"
        if why:
            raise InvalidRecordError(f"refused to store run {run_id} in '{self.root}': {why}; nothing was written")
        path = self.records_dir / f"{run_id}.json"
        with self._writing():
            self._forget_tables_if_changed()
            leftover_marker = self._ids is None and self._marker.exists()
            # Written again: its rows get replaced. The marker, set before the record changes, makes a
            # command killed before the tables are rewritten leave a rebuild to the next one.
            marked = path.exists()
            if marked:
                self._put(self._marker, f"{run_id}\n".encode())
            self.records_dir.mkdir(parents=True, exist_ok=True)
            self._put(path, data)
            if record.get("status") in FINAL_STATUSES:  # kept until now: a run whose record failed to write resumes
                (self.checkpoint_dir / f"{run_id}.pt").unlink(missing_ok=True)
            if self._ensure_tables(skip=run_id, leftover_marker=leftover_marker):
                if run_id in self._ids and not marked:
                    self._put(self._marker, f"{run_id}\n".encode())
                    marked = True
                self._add(record)
            if marked:
                self._marker.unlink(missing_ok=True)
        seconds = time.perf_counter() - start
        for listener in self.listeners:
            listener(record, seconds)

    def finalize(self) -> None:
        """Sort both CSVs and write them with the parquet snapshots (each file atomically).

        Called once when a command that wrote runs ends, and (in effect) by `repair`. After a write
        that failed (`StoreWriteError`) it does nothing: the next command checks the tables."""
        if self._failed:
            return
        with self._writing():
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
        """Rebuild both tables from the records: the same files as the writes then `finalize`.
        Records that fail validation are left out (`repair` moves them aside)."""
        runs, epochs = self.tables()
        with self._writing():
            self._write_final(runs.to_csv(index=False), epochs.to_csv(index=False))
            self._marker.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------ internals

    @property
    def _marker(self) -> Path:
        return self.root / REWRITE_MARKER

    @contextlib.contextmanager
    def _writing(self, path: Path | None = None) -> Iterator[None]:
        """Turn an OSError raised inside into a StoreWriteError naming the file being written."""
        self._target = path
        try:
            yield
        except StoreWriteError:
            raise
        except OSError as exc:
            self._failed = True
            self._ids = None  # the tables are checked again before the next use
            where = self._target or (Path(exc.filename) if exc.filename else self.root)
            _write_failed(exc, where, self.root)

    def _put(self, path: Path, data: bytes) -> None:
        """Write one whole file of the store atomically (`_write_file`), remembering which for errors."""
        self._target = path
        _write_file(path, data)

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
        path = self._csv(name)
        self._target = path
        self._sizes[name] = _append_file(path, data)
        self.stats["rows_written"] += rows
        self.stats["bytes_written"] += len(data)

    def _replace(self, name: str, text: str, rows: int) -> None:
        data = text.encode()
        self._put(self._csv(name), data)
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
            self._put(self.root / f"{name}.parquet", buffer.getvalue())
            self.stats["bytes_written"] += buffer.getbuffer().nbytes
        self._ids = set(frames["runs"]["run_id"])
        self._epoch_columns = list(frames["epochs"].columns)
