"""The store never wedges (issue 14): records are validated against the tables' schema before they are
accepted, repair moves what does not validate aside and always finishes, a failed write (disk full,
permission lost) stops with one line and leaves every finished record intact, and files are created
with the user's umask."""
import copy
import errno
import json
import os
import stat

import pandas as pd
import pytest

import bench.grid.store as store_module
from bench.core.errors import UsageError
from bench.grid.schema import validate_record
from bench.grid.store import InvalidRecordError, ResultsStore, StoreWriteError


def record(run_id, seed=0, status="done", acc=50.0):
    return {
        "run_id": run_id, "preset": "quick", "status": status, "error": "" if status == "done" else "boom",
        "config": {
            "data": {"dataset": "digits", "imbalance": 10, "noise": "sym", "noise_rate": 0.4,
                     "order": "lt-noise", "meta_per_class": 10, "data_seed": 0},
            "method": "ce", "backbone": "mlp", "epochs": 2, "batch_size": 64, "seed": seed, "hparams": {},
        },
        "summary": {"last_acc": acc, "best_acc": acc + 1, "last5_acc": acc, "sec_per_iter": 0.01},
        "epochs": [{"epoch": 0, "test_acc": acc - 1, "train_loss": 1.0, "lr": 0.1, "sec_per_iter": 0.01,
                    "sec_epoch": 0.1, "samples": 10},
                   {"epoch": 1, "test_acc": acc, "train_loss": 0.5, "lr": 0.05, "sec_per_iter": 0.01,
                    "sec_epoch": 0.1, "samples": 10}],
    }


def unusable_records():
    """Records that used to pass repair's check but crash the table rebuild (CSV -> parquet)."""
    big_seed = record("bigseed", seed=2**64)  # the table rebuild died: OverflowError
    int64_edge = record("seed63", seed=2**63)  # fits no int64 column
    no_rho = record("norho")
    del no_rho["config"]["data"]["imbalance"]
    text_rate = record("textrate")
    text_rate["config"]["data"]["noise_rate"] = "forty percent"
    text_acc = record("textacc")
    text_acc["summary"]["last_acc"] = "n/a"
    return [big_seed, int64_edge, no_rho, text_rate, text_acc]


def plant(store, rec):
    """A record file written behind the store's back (an older version, a hand edit, a copy)."""
    store.records_dir.mkdir(parents=True, exist_ok=True)
    (store.records_dir / f"{rec['run_id']}.json").write_text(json.dumps(rec))


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", unusable_records(), ids=lambda r: r["run_id"])
def test_an_unusable_record_in_runs_does_not_wedge_writes_or_repair(tmp_path, bad):
    # before the fix: every later write died in the rebuild (OverflowError / ArrowInvalid / KeyError),
    # and so did `results repair`
    assert validate_record(bad)
    store = ResultsStore(tmp_path)
    store.write(record("a"))
    plant(store, bad)
    later = ResultsStore(tmp_path)  # a new command: checks the tables, finds a record without a row
    later.write(record("b", seed=1))
    later.finalize()
    assert sorted(pd.read_parquet(tmp_path / "runs.parquet").run_id) == ["a", "b"]

    report = ResultsStore(tmp_path).repair()
    assert [m["file"] for m in report["moved"]] == [f"{bad['run_id']}.json"]
    assert (store.records_dir / "corrupt" / f"{bad['run_id']}.json").exists()
    assert report["records"] == 2 and sorted(pd.read_csv(tmp_path / "runs.csv").run_id) == ["a", "b"]


def test_results_repair_command_moves_an_unusable_record_and_finishes(tmp_path, capsys):
    from bench.cli import main

    store = ResultsStore(tmp_path)
    store.write(record("a"))
    plant(store, record("bigseed", seed=2**63))
    assert main(["results", "repair", "--out", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert "moved bigseed.json" in said and "seed" in said and "1 run records (1 done, 0 failed)" in said


@pytest.mark.parametrize("bad", unusable_records(), ids=lambda r: r["run_id"])
def test_write_refuses_an_invalid_record_with_one_line_and_writes_nothing(tmp_path, bad):
    store = ResultsStore(tmp_path)
    with pytest.raises(InvalidRecordError) as caught:
        store.write(bad)
    assert isinstance(caught.value, UsageError) and "\n" not in str(caught.value)
    assert bad["run_id"] in str(caught.value) and "nothing was written" in str(caught.value)
    assert not list(tmp_path.rglob("*.json")) and not (tmp_path / "runs.csv").exists()


def test_valid_records_pass_including_failed_runs_and_text_diagnostics():
    failed = record("f", status="failed")
    failed["summary"] = {"last_acc": float("nan"), "best_epoch": -1, "best_selected_on": float("nan")}
    failed["epochs"] = []
    diag = record("d")
    diag["epochs"][0]["note"] = "text is fine for a diagnostic"
    assert validate_record(record("a")) == "" and validate_record(failed) == "" and validate_record(diag) == ""
    wrong = copy.deepcopy(diag)
    wrong["epochs"][0]["test_acc"] = "high"
    assert "test_acc" in validate_record(wrong)


def test_write_refuses_a_run_id_that_is_not_a_file_name(tmp_path):
    rec = record("../escape")
    with pytest.raises(InvalidRecordError):
        ResultsStore(tmp_path / "grid").write(rec)
    assert not list(tmp_path.rglob("*.json"))


# ------------------------------------------------------------------------------- failed writes


def enospc_on(monkeypatch, primitive, when):
    real = getattr(store_module, primitive)

    def hook(path, data):
        if when(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(store_module, primitive, hook)


def test_disk_full_while_writing_a_record_stops_with_one_line_and_keeps_finished_runs(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    store.write(record("a"))
    enospc_on(monkeypatch, "_write_file", lambda path: True)  # the disk is full from here on
    with pytest.raises(StoreWriteError) as caught:
        store.write(record("b", seed=1))
    message = str(caught.value)
    assert "\n" not in message and "b.json" in message and "No space left" in message
    assert "free disk space" in message and isinstance(caught.value, UsageError)
    store.finalize()  # the launcher's `finally`: must not raise a second error over the first
    assert json.loads((store.records_dir / "a.json").read_text())["status"] == "done"
    assert not (store.records_dir / "b.json").exists() and not list(store.records_dir.glob(".*.tmp"))

    monkeypatch.undo()  # space freed: the same command again stores the run
    again = ResultsStore(tmp_path)
    assert again.completed_ids() == {"a"}
    again.write(record("b", seed=1))
    again.finalize()
    assert sorted(pd.read_csv(tmp_path / "runs.csv").run_id) == ["a", "b"]


def test_a_done_runs_checkpoint_is_deleted_only_once_its_record_is_written(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    store.checkpoint_dir.mkdir(parents=True)
    for run_id in ("a", "b", "c"):
        (store.checkpoint_dir / f"{run_id}.pt").write_bytes(b"state")
    enospc_on(monkeypatch, "_write_file", lambda path: True)
    with pytest.raises(StoreWriteError):
        store.write(record("a"))
    assert (store.checkpoint_dir / "a.pt").exists()  # the run resumes from it next time
    monkeypatch.undo()
    ResultsStore(tmp_path).write(record("a"))
    assert not (store.checkpoint_dir / "a.pt").exists()
    failed = {**record("b", seed=1), "status": "failed", "error": "boom", "summary": {}}
    ResultsStore(tmp_path).write(failed)
    assert (store.checkpoint_dir / "b.pt").exists() and (store.checkpoint_dir / "c.pt").exists()


def test_disk_full_while_appending_a_table_row_names_the_table_and_the_next_command_heals(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    store.write(record("a"))
    enospc_on(monkeypatch, "_append_file", lambda path: path.name == "runs.csv")
    with pytest.raises(StoreWriteError, match="runs.csv"):
        store.write(record("b", seed=1))
    store.finalize()
    assert json.loads((store.records_dir / "b.json").read_text())["status"] == "done"  # the record is whole
    monkeypatch.undo()
    again = ResultsStore(tmp_path)
    again.write(record("c", seed=2))
    again.finalize()
    assert sorted(pd.read_csv(tmp_path / "runs.csv").run_id) == ["a", "b", "c"]


def test_a_failed_append_leaves_no_partial_row(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("x\n1\n")
    calls = []
    real_write = os.write

    def short_then_fail(fd, data):  # the disk fills after the first 3 bytes of the row
        if calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        calls.append(1)
        return real_write(fd, bytes(data[:3]))

    monkeypatch.setattr(store_module.os, "write", short_then_fail)
    with pytest.raises(OSError):
        store_module._append_file(path, b"22222\n")
    monkeypatch.undo()
    assert path.read_text() == "x\n1\n"


def test_permission_lost_mid_grid_says_what_to_restore(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    store.write(record("a"))

    def denied(path, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(store_module, "_write_file", denied)
    with pytest.raises(StoreWriteError, match="restore write permission"):
        store.write(record("b", seed=1))


@pytest.mark.parametrize("launcher", ["local", pytest.param("ray", marks=pytest.mark.ray)])
def test_the_grid_driver_stops_with_one_line_and_a_non_zero_exit_when_the_disk_fills(tmp_path, monkeypatch, capsys,
                                                                                     launcher):
    from bench.cli import main

    out = tmp_path / "grid"
    grid = ["run", "grid", "--preset", "quick", "--methods", "ce", "--launcher", launcher, "--out", str(out),
            "--checkpoint-every", "1"]
    enospc_on(monkeypatch, "_write_file", lambda path: path.suffix == ".json" and path.parent.name == "runs"
              and len(list(path.parent.glob("*.json"))) >= 1)  # the second record does not fit
    code = main(grid)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench")]
    assert code != 0 and len(err) == 1 and "No space left" in err[0], err
    records = list((out / "runs").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "done"
    # the run whose record did not fit keeps its checkpoint, so it resumes
    assert len(list((out / "checkpoints").glob("*.pt"))) >= 1
    monkeypatch.undo()
    assert main(grid) == 0
    assert "1 already done" in capsys.readouterr().out
    assert not list((out / "checkpoints").glob("*.pt"))


# ------------------------------------------------------------------------------- umask


def test_records_and_tables_are_created_with_the_users_umask(tmp_path):
    old = os.umask(0o002)
    try:
        store = ResultsStore(tmp_path)
        store.write(record("a"))
        store.write(record("b", seed=1))
        store.write(record("b", seed=1, acc=60.0))  # rewritten: runs.csv replaced atomically
        store.finalize()
        files = [store.records_dir / "a.json", store.records_dir / "b.json", *(
            tmp_path / f"{name}.{ext}" for name in ("runs", "epochs") for ext in ("csv", "parquet"))]
        modes = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files}
        assert set(modes.values()) == {oct(0o664)}, modes
    finally:
        os.umask(old)
