"""Nothing is lost: a killed driver or worker, two commands on one folder, damaged files.

Each test kills real processes with SIGKILL. Grids are the `quick` preset's CE runs (digits,
MLP) stretched to 40 epochs with a checkpoint every epoch, so a run lasts a few seconds and a
kill lands mid-run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.grid.lock import ResultsLock
from bench.grid.store import ResultsStore

REPO = Path(__file__).resolve().parents[2]
GRID = ["run", "grid", "--preset", "quick", "--methods", "ce", "--epochs", "40", "--checkpoint-every", "1"]


def _bench(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def _wait_for(condition, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the command ended before the condition held:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _in_flight(out: Path) -> set[str]:
    """Runs with a checkpoint but no record yet: killed now, they must resume."""
    checkpoints = {p.stem for p in (out / "checkpoints").glob("*.pt")} if (out / "checkpoints").exists() else set()
    records = {p.stem for p in (out / "runs").glob("*.json")} if (out / "runs").exists() else set()
    return checkpoints - records


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


# ------------------------------------------------------------------------------------- lock


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, capsys):
    with ResultsLock(tmp_path):
        assert main([*GRID, "--launcher", "local", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is in use by another bench run" in err and f"pid {os.getpid()}" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs.csv").exists()


def test_the_lock_dies_with_its_holder(tmp_path):
    code = f"from bench.grid.lock import ResultsLock; import time\nwith ResultsLock({str(tmp_path)!r}):\n" \
           "    print('held', flush=True); time.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=f"pid {holder.pid}"):
            ResultsLock(tmp_path).__enter__()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with ResultsLock(tmp_path):  # no stale lock after a SIGKILL
            pass
    finally:
        holder.kill()


# ---------------------------------------------------------------------- killed driver, resume


@pytest.mark.slow
def test_a_killed_driver_loses_nothing_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "grid"
    args = [*GRID, "--launcher", "local", "--out", str(out)]
    driver = _bench(args)
    _wait_for(lambda: len(_records(out)) >= 1 and _in_flight(out), proc=driver)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    before = _records(out)
    interrupted = _in_flight(out)
    assert before and interrupted and all(r["status"] == "done" for r in before.values())

    again = _bench(args)
    assert again.wait(timeout=300) == 0, again.stdout.read()
    after = _records(out)
    assert len(after) == 4 and all(r["status"] == "done" for r in after.values())
    for run_id, record in before.items():  # finished runs are kept, untouched, exactly once
        assert after[run_id] == record
    for run_id in interrupted:  # the run in flight resumed from its last checkpoint
        assert after[run_id]["resumed_from_epoch"] >= 1
        assert [e["epoch"] for e in after[run_id]["epochs"]] == list(range(40))
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs.run_id) == sorted(after) and not runs.run_id.duplicated().any()
    assert len(pd.read_csv(out / "epochs.csv")) == 4 * 40


# ----------------------------------------------------------------------- killed Ray worker


def _trial_workers() -> list[int]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], check=True, capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in ps.splitlines() if "ray::ImplicitFunc" in line]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("max_failures", [1, 0])
def test_a_killed_ray_worker_is_retried_or_recorded_as_failed(tmp_path, max_failures):
    out = tmp_path / "grid"
    driver = _bench([*GRID, "--out", str(out), "--max-failures", str(max_failures)])
    try:
        # every running trial has a checkpoint: whichever worker dies, its run can resume
        _wait_for(lambda: 1 <= len(_trial_workers()) <= len(_in_flight(out)), proc=driver)
        victim = _trial_workers()[0]
        os.kill(victim, signal.SIGKILL)
        code = driver.wait(timeout=300)
        log = driver.stdout.read()
    finally:
        driver.kill()
    records = _records(out)
    assert len(records) == 4, log  # the grid went on
    if max_failures:
        assert code == 0, log
        assert all(r["status"] == "done" for r in records.values())
        assert any(r.get("resumed_from_epoch", 0) >= 1 for r in records.values()), log
    else:
        assert code == 1, log
        failed = [r for r in records.values() if r["status"] == "failed"]
        assert len(failed) == 1 and failed[0]["error"].startswith("Ray trial error"), log
        assert "error.txt" not in failed[0]["error"] and len(failed[0]["error"]) > len("Ray trial error: "), failed
        assert sum(r["status"] == "done" for r in records.values()) == 3


# --------------------------------------------------------------------- damaged files, repair


def test_damaged_files_are_named_and_repair_rebuilds_the_tables(tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(["run", "grid", "--preset", "quick", "--methods", "ce", "--launcher", "local", "--out", str(out)]) == 0
    records = sorted((out / "runs").glob("*.json"))
    good_runs = pd.read_csv(out / "runs.csv")
    records[0].write_text(records[0].read_text()[:100])  # a torn record
    (out / "runs.csv").write_text((out / "runs.csv").read_text()[:150] + '"unterminated\n')
    (out / "runs" / ".x.json.tmp").write_text("left by a killed write")
    capsys.readouterr()

    assert main(["table", "--results", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bench results repair --results" in err and len(err.strip().splitlines()) == 1

    assert main(["results", "repair", "--results", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"moved {records[0].name}" in said and "3 run records (3 done, 0 failed)" in said
    assert (out / "runs" / "corrupt" / records[0].name).exists()  # kept, not deleted
    assert not (out / "runs" / ".x.json.tmp").exists()
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs.run_id) == sorted(good_runs.run_id[good_runs.run_id != records[0].stem])
    assert main(["table", "--results", str(out)]) == 0

    # the moved-aside run counts as not done: the grid command runs it again
    capsys.readouterr()
    assert main(["run", "grid", "--preset", "quick", "--methods", "ce", "--launcher", "local", "--out", str(out)]) == 0
    assert "4 runs, 1 to do, 3 already done" in capsys.readouterr().out
    assert len(ResultsStore(out).records()) == 4


def test_repair_needs_a_results_folder(tmp_path, capsys):
    assert main(["results", "repair", "--results", str(tmp_path)]) == 2
    assert "has no runs/ folder" in capsys.readouterr().err
