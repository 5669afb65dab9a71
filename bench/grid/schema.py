"""The column list of runs.csv / epochs.csv in one place, and how a run record becomes rows.

- `runs`: one row per run, `RUN_COLUMNS` (see `run_row`).
- `epochs`: one row per run and epoch, `EPOCH_COLUMNS` followed by the sorted union of the extra
  diagnostic keys that the runs' epoch histories carry (`epoch_header`); `samples` is never a column.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

RUN_COLUMNS = [
    "run_id", "preset", "dataset", "backbone", "method", "imbalance", "noise", "noise_rate",
    "order", "pad_mode", "normalisation", "noise_sampling",
    "meta_per_class", "data_seed", "seed", "epochs", "batch_size", "status",
    "last_acc", "best_acc", "best_epoch", "best_selected_on", "last5_acc", "sec_per_iter",
    "sec_per_epoch", "samples_per_sec", "sec_total", "peak_mem_mb", "colocated", "speed", "meta_set_used", "device",
    "git_commit", "finished_at", "hparams", "error",
]
EPOCH_COLUMNS = ["run_id", "epoch", "test_acc", "train_loss", "lr", "sec_per_iter", "sec_epoch"]

# Columns that hold text, read back as text (a run id or git commit of digits stays as written).
TEXT_COLUMNS = frozenset({
    "run_id", "preset", "dataset", "backbone", "method", "noise", "order", "pad_mode", "normalisation",
    "noise_sampling", "status", "best_selected_on",
    "speed", "device", "git_commit", "finished_at", "hparams", "error",
})
# Keys of an epoch history entry that never become columns.
EPOCH_KEYS_DROPPED = frozenset({"samples"})


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
        # data-protocol fields added later: records written before them have the defaults
        "pad_mode": data.get("pad_mode", "constant"),
        "normalisation": data.get("normalisation", "dataset"),
        "noise_sampling": data.get("noise_sampling", "independent"),
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


def epoch_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The `epochs` rows of one run record: its epoch history, each entry with the run id."""
    return [{"run_id": record["run_id"], **entry} for entry in record.get("epochs", [])]


def extra_epoch_keys(rows: Iterable[dict[str, Any]]) -> set[str]:
    """The keys of epoch rows that are not among `EPOCH_COLUMNS` and are not dropped."""
    return {key for row in rows for key in row} - set(EPOCH_COLUMNS) - EPOCH_KEYS_DROPPED


def epoch_header(extra: Iterable[str]) -> list[str]:
    """The `epochs` columns for these extra diagnostic keys: `EPOCH_COLUMNS`, then the extras sorted."""
    return EPOCH_COLUMNS + sorted(set(extra) - set(EPOCH_COLUMNS) - EPOCH_KEYS_DROPPED)
