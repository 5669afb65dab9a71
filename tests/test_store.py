import json

import pandas as pd
import pytest

from bench.core.errors import UsageError
from bench.grid.store import EPOCH_COLUMNS, RUN_COLUMNS, ResultsStore


def record(run_id, status="done", acc=50.0):
    return {
        "run_id": run_id, "preset": "quick", "status": status, "error": "" if status == "done" else "boom",
        "config": {
            "data": {"dataset": "digits", "imbalance": 10, "noise": "sym", "noise_rate": 0.4,
                     "order": "lt-noise", "meta_per_class": 10, "data_seed": 0},
            "method": "ce", "backbone": "mlp", "epochs": 2, "batch_size": 64, "seed": 0, "hparams": {},
        },
        "summary": {"last_acc": acc, "best_acc": acc + 1, "last5_acc": acc, "sec_per_iter": 0.01},
        "epochs": [{"epoch": 0, "test_acc": acc - 1, "train_loss": 1.0, "lr": 0.1, "sec_per_iter": 0.01,
                    "sec_epoch": 0.1, "samples": 10},
                   {"epoch": 1, "test_acc": acc, "train_loss": 0.5, "lr": 0.05, "sec_per_iter": 0.01,
                    "sec_epoch": 0.1, "samples": 10, "label_acc": 90.0}],
    }


def test_write_builds_both_tables_in_csv_and_parquet(tmp_path):
    store = ResultsStore(tmp_path)
    store.ensure_writable()
    store.write(record("a"))
    store.write(record("b", status="failed"))
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs.columns) == RUN_COLUMNS
    assert set(runs.run_id) == {"a", "b"}
    assert pd.read_parquet(tmp_path / "runs.parquet").shape == runs.shape
    epochs = pd.read_parquet(tmp_path / "epochs.parquet")
    assert list(epochs.columns)[: len(EPOCH_COLUMNS)] == EPOCH_COLUMNS and "label_acc" in epochs
    assert len(epochs) == 4
    assert store.completed_ids() == {"a"}


def test_torn_or_foreign_files_do_not_break_the_store(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(record("a"))
    (store.records_dir / "zz.json").write_text('{"run_id": "zz", "stat')  # a torn write from elsewhere
    (store.records_dir / ".a.json.123.tmp").write_text("partial")  # an interrupted atomic write
    assert store.completed_ids() == {"a"}
    store.rebuild_tables()
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 1


def test_rewriting_a_failed_run_replaces_it(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(record("a", status="failed"))
    store.write(record("a", acc=70.0))
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 1 and runs.status[0] == "done" and runs.last_acc[0] == 70.0
    assert json.loads((store.records_dir / "a.json").read_text())["status"] == "done"


def test_out_path_that_is_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="pass --out with a writable folder"):
        ResultsStore(tmp_path / "file" / "grid").ensure_writable()
