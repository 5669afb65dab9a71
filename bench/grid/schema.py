"""The column list of runs.csv / epochs.csv in one place, and how a run record becomes rows.

- `runs`: one row per run, `RUN_COLUMNS` (see `run_row`).
- `epochs`: one row per run and epoch, `EPOCH_COLUMNS` followed by the sorted union of the extra
  diagnostic keys that the runs' epoch histories carry (`epoch_header`); `samples` is never a column.
- `validate_record`: whether a record fits these columns (types and ranges), checked before the store
  accepts it, so that one bad record can never make a table rebuild (CSV -> parquet) fail.
- `config_key`: a hash of a run's configuration without its seeds, the `config_key` column; runs of
  one method and cell pool their seeds only when it agrees.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

RUN_COLUMNS = [
    "run_id", "preset", "dataset", "backbone", "method", "imbalance", "noise", "noise_rate",
    "noise_rate_realized", "order", "pad_mode", "normalisation", "noise_sampling", "val_fraction",
    "max_per_class", "meta_per_class", "data_seed", "seed", "epochs", "batch_size", "status",
    "last_acc", "best_acc", "best_epoch", "best_selected_on", "last5_acc",
    "selected_acc", "selected_epoch", "selected_on", "selected_val", "sec_per_iter",
    "sec_per_epoch", "samples_per_sec", "sec_total", "peak_mem_mb", "colocated", "speed", "meta_set_used", "device",
    "git_commit", "finished_at", "hparams", "error", "config_key", "tune_trial",
]
#: a run's status: finished, failed (retried by the next launch), or stopped early by a tuning scheduler
STATUSES = ("done", "failed", "stopped")
#: statuses after which a run is not run again
FINAL_STATUSES = ("done", "stopped")
EPOCH_COLUMNS = ["run_id", "epoch", "test_acc", "train_loss", "lr", "sec_per_iter", "sec_epoch"]

# Columns that hold text, read back as text (a run id or git commit of digits stays as written).
TEXT_COLUMNS = frozenset({
    "run_id", "preset", "dataset", "backbone", "method", "noise", "order", "pad_mode", "normalisation",
    "noise_sampling", "status", "best_selected_on", "selected_on", "tune_trial",
    "speed", "device", "git_commit", "finished_at", "hparams", "error", "config_key",
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
        # the share of training labels that differ from the true ones (nothing for a run that failed before)
        "noise_rate_realized": record.get("data", {}).get("noise_rate_realized", float("nan")),
        "order": data["order"],
        # data-protocol fields added later: records written before them have the defaults
        "pad_mode": data.get("pad_mode", "constant"),
        "normalisation": data.get("normalisation", "dataset"),
        "noise_sampling": data.get("noise_sampling", "independent"),
        "val_fraction": data.get("val_fraction", 0.0),
        "max_per_class": data.get("max_per_class", 0),
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
        "config_key": config_key(cfg),
        "tune_trial": str(cfg["tuning"]["trial"]) if isinstance(cfg.get("tuning"), dict) and cfg["tuning"] else "",
    }
    for key in ("last_acc", "best_acc", "best_epoch", "best_selected_on", "last5_acc", "selected_acc",
                "selected_epoch", "selected_val", "sec_per_iter", "sec_per_epoch", "samples_per_sec", "sec_total",
                "peak_mem_mb"):
        row[key] = summary.get(key, float("nan"))
    row["selected_on"] = summary.get("selected_on", "")
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


# ------------------------------------------------------------------------------ validation

INT64_MAX = 2**63 - 1
#: runs columns holding a whole number, with the least value allowed
INT_COLUMNS = {"max_per_class": 0, "meta_per_class": 0, "data_seed": 0, "seed": 0, "epochs": 1, "batch_size": 1,
               "colocated": 0}
#: runs columns holding a real number (or nothing: NaN), with the range allowed
REAL_COLUMNS = {"imbalance": (1.0, math.inf), "noise_rate": (0.0, 1.0), "val_fraction": (0.0, 0.5)}
#: summary columns: a real number, or nothing (a failed run)
SUMMARY_COLUMNS = ("noise_rate_realized", "last_acc", "best_acc", "best_epoch", "last5_acc", "selected_acc",
                   "selected_epoch", "selected_val", "sec_per_iter", "sec_per_epoch", "samples_per_sec", "sec_total",
                   "peak_mem_mb")
#: text columns that must not be empty
REQUIRED_TEXT = ("run_id", "dataset", "backbone", "method", "noise", "order", "status")
#: where `run_row` finds the required fields of a record's config
REQUIRED_CONFIG = (("data", "dataset"), ("data", "imbalance"), ("data", "noise"), ("data", "noise_rate"),
                   ("data", "order"), ("data", "meta_per_class"), ("data", "data_seed"), ("backbone",),
                   ("method",), ("seed",), ("epochs",), ("batch_size",))


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    """A number a float64 column holds as written (bools and ints beyond int64 are not)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return False
    return not _is_int(value) or -INT64_MAX - 1 <= value <= INT64_MAX


def _cell_problem(column: str, value: Any) -> str:
    """Why `value` cannot be the `column` cell of a runs row ('' if it can)."""
    if column in INT_COLUMNS:
        if not _is_int(value) or not INT_COLUMNS[column] <= value <= INT64_MAX:
            return f"{column} {value!r} is not a whole number in [{INT_COLUMNS[column]}, 2**63)"
    elif column in REAL_COLUMNS:
        low, high = REAL_COLUMNS[column]
        if not _is_real(value) or not low <= value <= high:
            return f"{column} {value!r} is not a number in [{low:g}, {high:g}]"
    elif column in SUMMARY_COLUMNS:
        if value is not None and not _is_real(value):
            return f"summary {column} {value!r} is not a number"
    elif column == "meta_set_used":
        if not isinstance(value, bool) and value not in (0, 1):
            return f"meta_set_used {value!r} is not true or false"
    elif column == "status":
        if value not in STATUSES:
            return f"unknown status {value!r}"
    elif column in TEXT_COLUMNS:
        missing = value is None or (isinstance(value, float) and math.isnan(value))  # an empty cell
        if not missing and not isinstance(value, str):
            return f"{column} {value!r} is not text"
        if column in REQUIRED_TEXT and not value:
            return f"{column} is empty"
    return ""


def validate_record(record: Any) -> str:
    """Why a run record cannot become rows of the tables ('' if it can): every column of its runs row
    and epoch rows is checked against its type and range, so the tables always convert to parquet."""
    if not isinstance(record, dict):
        return "not a JSON object"
    config = record.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("data"), dict):
        return "no config"
    for path in REQUIRED_CONFIG:
        node: Any = config
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return f"config.{'.'.join(path)} is missing"
            node = node[part]
    for name in ("summary", "env"):
        if not isinstance(record.get(name, {}), dict):
            return f"{name} is not a JSON object"
    if not isinstance(config.get("hparams", {}), dict):
        return "config.hparams is not a JSON object"
    try:
        row = run_row(record)
    except (KeyError, TypeError, ValueError) as exc:
        return f"cannot be flattened into a runs row ({type(exc).__name__}: {exc})"
    for column in RUN_COLUMNS:
        why = _cell_problem(column, row[column])
        if why:
            return why
    epochs = record.get("epochs", [])
    if not isinstance(epochs, list):
        return "epochs is not a list"
    for i, entry in enumerate(epochs):
        if not isinstance(entry, dict):
            return f"epochs[{i}] is not a JSON object"
        if not _is_int(entry.get("epoch")) or not 0 <= entry["epoch"] <= INT64_MAX:
            return f"epochs[{i}].epoch {entry.get('epoch')!r} is not a whole number in [0, 2**63)"
        for key, value in entry.items():
            if key == "run_id":
                return f"epochs[{i}] holds a run_id"
            text_ok = isinstance(value, str) and key not in EPOCH_COLUMNS  # a diagnostic may be text
            if key not in EPOCH_KEYS_DROPPED and value is not None and not isinstance(value, bool) \
                    and not text_ok and not _is_real(value):
                return f"epochs[{i}].{key} {value!r} is not a number or text"
    return ""


# ------------------------------------------------------------------------------ pooling key

def _plain(value: Any) -> Any:
    """A default value as it reads back from a record's JSON."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value))


def config_key(config: dict[str, Any]) -> str:
    """12 hex digits hashing a run's configuration without its seeds (`seed`, `data.data_seed`) and
    without the fields that are recorded but not hashed (`UNHASHED_FIELDS`, e.g. the preset): equal for
    exactly the runs whose seeds may be pooled. Every other field of the config takes part, so a field
    added to `RunConfig` is compared without anyone listing it; fields added later count at their
    default when a record predates them (as in `RunConfig.run_id`)."""
    from bench.train.config import LATER_DATA_FIELDS, LATER_RUN_DEFAULTS, UNHASHED_FIELDS

    payload = {k: v for k, v in config.items() if k not in ("seed", *UNHASHED_FIELDS)}
    data = {k: v for k, v in payload.get("data", {}).items() if k != "data_seed"}
    for name, default in LATER_DATA_FIELDS.items():
        if name in data and data[name] == _plain(default):
            del data[name]
    payload["data"] = data
    for name, default in LATER_RUN_DEFAULTS.items():
        if name in payload and payload[name] == _plain(default):
            del payload[name]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
