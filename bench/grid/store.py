"""The results store of a grid: one JSON record per run, and tables derived from them.

Layout under the grid's folder:
- `runs/<run_id>.json`: the full record (config, environment, git commit, per-epoch history);
  written atomically when a run ends; a record with status "done" is the run's done marker.
- `runs.csv` / `runs.parquet`: one row per run. `epochs.csv` / `epochs.parquet`: one row per
  run and epoch. Both are rebuilt from the records after every write, atomically, so a killed
  driver never leaves a torn table and never loses a finished run.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.errors import UsageError
from bench.train.checkpoint import atomic_write_bytes, atomic_write_json

RUN_COLUMNS = [
    "run_id", "preset", "dataset", "backbone", "method", "imbalance", "noise", "noise_rate",
    "order", "meta_per_class", "data_seed", "seed", "epochs", "batch_size", "status",
    "last_acc", "best_acc", "best_epoch", "best_selected_on", "last5_acc", "sec_per_iter",
    "sec_per_epoch", "samples_per_sec", "sec_total", "peak_mem_mb", "colocated", "speed", "meta_set_used", "device",
    "git_commit", "finished_at", "hparams", "error",
]
EPOCH_COLUMNS = ["run_id", "epoch", "test_acc", "train_loss", "lr", "sec_per_iter", "sec_epoch"]


def run_row(record: dict[str, Any]) -> dict[str, Any]:
    """Flatten a run record into one `runs` row."""
    cfg, data, summary = record["config"], record["config"]["data"], record.get("summary", {})
    row = {
        "run_id": record["run_id"],
        "preset": record.get("preset", ""),
        "dataset": data["dataset"],
        "backbone": cfg["backbone"],
        "method": cfg["method"],
        "imbalance": data["imbalance"],
        "noise": data["noise"],
        "noise_rate": data["noise_rate"],
        "order": data["order"],
        "meta_per_class": data["meta_per_class"],
        "data_seed": data["data_seed"],
        "seed": cfg["seed"],
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "status": record["status"],
        "colocated": record.get("colocated", 1),
        "speed": json.dumps(record.get("speed", {}), sort_keys=True),
        "meta_set_used": record.get("meta_set_used", False),
        "device": record.get("env", {}).get("device", ""),
        "git_commit": record.get("git_commit", ""),
        "finished_at": record.get("finished_at", ""),
        "hparams": json.dumps(cfg.get("hparams", {}), sort_keys=True),
        "error": record.get("error", ""),
    }
    for key in ("last_acc", "best_acc", "best_epoch", "best_selected_on", "last5_acc", "sec_per_iter",
                "sec_per_epoch", "samples_per_sec", "sec_total", "peak_mem_mb"):
        row[key] = summary.get(key, float("nan"))
    return row


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


class ResultsStore:
    """Reads and writes the store of one grid (see the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.records_dir = self.root / "runs"

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
        by interrupted writes, and rebuild the tables from the records. Returns what it did."""
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
        """Persist one finished run, then refresh the tables."""
        atomic_write_json(self.records_dir / f"{record['run_id']}.json", record)
        self.rebuild_tables()

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(runs, epochs) data frames built from the records."""
        records = self.records()
        runs = pd.DataFrame([run_row(r) for r in records], columns=RUN_COLUMNS)
        epoch_rows = [{"run_id": r["run_id"], **e} for r in records for e in r.get("epochs", [])]
        extra = sorted({k for row in epoch_rows for k in row} - set(EPOCH_COLUMNS) - {"samples"})
        epochs = pd.DataFrame(epoch_rows, columns=EPOCH_COLUMNS + extra)
        return runs, epochs

    def rebuild_tables(self) -> None:
        runs, epochs = self.tables()
        for name, frame in (("runs", runs), ("epochs", epochs)):
            atomic_write_bytes(self.root / f"{name}.csv", frame.to_csv(index=False).encode())
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            atomic_write_bytes(self.root / f"{name}.parquet", buffer.getvalue())
