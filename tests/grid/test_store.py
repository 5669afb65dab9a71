import json

import pandas as pd
import pytest

from bench.core.errors import UsageError
from bench.grid.store import EPOCH_COLUMNS, RUN_COLUMNS, ResultsStore
from bench.train.checkpoint import atomic_write_json


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
    done = record("a")
    done["data"] = {"noise_rate_realized": 0.375, "train_size": 80}  # what the data bundle reports
    store.write(done)
    store.write(record("b", status="failed"))
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs.columns) == RUN_COLUMNS
    assert set(runs.run_id) == {"a", "b"}
    realized = runs.set_index("run_id")["noise_rate_realized"]
    assert realized["a"] == 0.375 and pd.isna(realized["b"])  # a run that failed before its data: nothing
    store.finalize()  # the parquet files are snapshots written when a command ends
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


# ------------------------------------------------------------------- incremental tables


def _run(run_id, status="done", acc=50.0, extra=None, summary=(), **fields):
    """A record whose epochs carry `extra` diagnostic keys (and no `label_acc` when extra is given)."""
    r = {**record(run_id, status, acc), **fields}
    r["summary"].update(summary)
    if extra is not None:
        for entry in r["epochs"]:
            entry.pop("label_acc", None)
            entry.update(extra)
    return r


def _tables(root):
    """Both tables as typed frames in a canonical row order (to compare contents)."""
    runs = pd.read_csv(root / "runs.csv", dtype={"run_id": str, "git_commit": str})
    epochs = pd.read_csv(root / "epochs.csv", dtype={"run_id": str})
    return (runs.sort_values("run_id").reset_index(drop=True),
            epochs.sort_values(["run_id", "epoch"]).reset_index(drop=True))


def _rebuilt_copy(root, copy):
    """A fresh folder holding root's records, its tables rebuilt from them."""
    (copy / "runs").mkdir(parents=True)
    for path in (root / "runs").glob("*.json"):
        (copy / "runs" / path.name).write_bytes(path.read_bytes())
    ResultsStore(copy).rebuild_tables()
    return copy


def test_the_work_of_a_write_does_not_grow_with_the_finished_runs(tmp_path):
    store = ResultsStore(tmp_path)
    work = []
    for i in range(500):
        before = dict(store.stats)
        store.write(record(f"r{i:04d}", acc=40.0 + i % 50))
        work.append({key: store.stats[key] - before[key] for key in before})
    tenth, last = work[9], work[499]
    assert tenth["records_parsed"] == last["records_parsed"] == 0
    assert tenth["rows_written"] == last["rows_written"] == 3  # one run row, two epoch rows
    assert sum(last.values()) <= 3 * sum(tenth.values())
    runs, epochs = _tables(tmp_path)
    assert len(runs) == 500 and len(epochs) == 1000


def test_writes_then_finalize_give_the_files_of_a_full_rebuild(tmp_path):
    root = tmp_path / "grid"
    store = ResultsStore(root)
    store.write(_run("c"))  # epochs: label_acc
    store.write(_run("a", status="failed", extra={"clean_loss": 0.3}))  # widens the header
    store.write(_run("12e456789012", extra={}, summary={"best_epoch": 1}))  # no extra column; a numeric-looking id
    store.write(_run("b", extra={"agree": True, "note": 'x, "y"'}, git_commit="0123456"))  # widens again
    assert (root / "epochs.csv").read_text().splitlines()[0] == ",".join(
        EPOCH_COLUMNS + ["agree", "clean_loss", "label_acc", "note"])
    store.write(_run("a", acc=70.0, extra={"clean_loss": 0.2, "zeta": 1}))  # the failed run re-run: rewritten
    store.write(_run("0042", summary={"best_epoch": 0}))
    store.finalize()

    runs, epochs = _tables(root)
    assert list(runs.run_id) == sorted(["a", "b", "c", "0042", "12e456789012"])
    assert runs.set_index("run_id").loc["a", "status"] == "done" and runs.last_acc[runs.run_id == "a"].item() == 70.0
    assert list(epochs.columns) == EPOCH_COLUMNS + ["agree", "clean_loss", "label_acc", "note", "zeta"]
    assert len(epochs) == 10 and list(epochs.clean_loss[epochs.run_id == "a"]) == [0.2, 0.2]

    rebuilt = _rebuilt_copy(root, tmp_path / "rebuilt")
    for name in ("runs.csv", "epochs.csv", "runs.parquet", "epochs.parquet"):
        assert (rebuilt / name).read_bytes() == (root / name).read_bytes(), name
    ResultsStore(rebuilt).finalize()  # finalize changes nothing in final files
    for name in ("runs.csv", "epochs.csv"):
        assert (rebuilt / name).read_bytes() == (root / name).read_bytes(), name
    snapshot = pd.read_parquet(root / "runs.parquet")
    assert snapshot.shape == runs.shape and list(snapshot.run_id) == list(runs.run_id)
    assert list(snapshot.git_commit) == ["", "", "", "0123456", ""] and snapshot.last_acc.equals(runs.last_acc)


def test_a_torn_row_or_a_record_without_a_row_is_healed_by_the_next_write(tmp_path):
    root = tmp_path / "grid"
    store = ResultsStore(root)
    for i in range(3):
        store.write(record(f"r{i}"))
    with open(root / "runs.csv", "a") as f:
        f.write("r9,quick,digi")  # a killed append: half a row, no newline
    ResultsStore(root).write(record("r3"))  # the next command
    assert (root / "runs.csv").read_text().endswith("\n")
    runs, epochs = _tables(root)
    assert list(runs.run_id) == ["r0", "r1", "r2", "r3"] and len(epochs) == 8

    atomic_write_json(store.records_dir / "r4.json", record("r4"))  # killed before its rows were added
    ResultsStore(root).write(record("r5"))
    for mine, full in zip(_tables(root), _tables(_rebuilt_copy(root, tmp_path / "a"))):
        pd.testing.assert_frame_equal(mine, full)
    assert "r4" in set(_tables(root)[0].run_id)

    store = ResultsStore(root)  # the same store object notices a table changed under it
    store.write(record("r6"))
    with open(root / "epochs.csv", "a") as f:
        f.write("r6,2,4")
    store.write(record("r7"))
    for mine, full in zip(_tables(root), _tables(_rebuilt_copy(root, tmp_path / "b"))):
        pd.testing.assert_frame_equal(mine, full)


def test_a_rerun_killed_before_its_rows_were_replaced_is_rebuilt_by_the_next_write(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(record("a", status="failed"))
    # what a write of the re-run killed between its record and the tables leaves behind
    (tmp_path / ".tables-rewrite").write_text("a\n")
    atomic_write_json(store.records_dir / "a.json", record("a", acc=70.0))
    ResultsStore(tmp_path).write(record("b"))
    runs = _tables(tmp_path)[0].set_index("run_id")
    assert runs.status.to_dict() == {"a": "done", "b": "done"} and runs.last_acc["a"] == 70.0
    assert not (tmp_path / ".tables-rewrite").exists()


def test_listeners_get_each_record_and_the_seconds_its_write_took(tmp_path):
    store = ResultsStore(tmp_path)
    seen = []

    def listener(rec, seconds):  # called once the record and its rows are written
        seen.append((rec["run_id"], seconds, rec["run_id"] in set(_tables(tmp_path)[0].run_id)))

    store.listeners.append(listener)
    for rec in (record("a", status="failed"), record("b"), record("a")):
        store.write(rec)
    assert [(run_id, stored) for run_id, _, stored in seen] == [("a", True), ("b", True), ("a", True)]
    assert all(isinstance(seconds, float) and seconds >= 0 for _, seconds, _ in seen)
    assert ResultsStore(tmp_path).listeners == []
