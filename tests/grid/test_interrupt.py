"""An interrupted command tells the truth: SIGINT exits 130, SIGTERM 143, never 0.

Real `python -m bench` processes are signalled once at least one run record is stored (or, for
`run one`, once its run has a checkpoint). The grid is the `quick` preset's CE runs (digits, MLP,
4 runs) at 10 epochs with a checkpoint every epoch, so a run lasts a second or two.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.grid.store import ResultsStore

REPO = Path(__file__).resolve().parents[2]
GRID = ["run", "grid", "--preset", "quick", "--methods", "ce", "--seeds", "0", "--epochs", "10",
        "--checkpoint-every", "1"]
SUMMARY = re.compile(r"^bench: interrupted by (SIG\w+): (\d+) of (\d+) runs done, (\d+) remain; finished runs are "
                     r"saved, re-run the same command to resume \(done runs are skipped\)$", re.M)


def _bench(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.exists() else []


def _signal_when(proc: subprocess.Popen, ready, signum: int, timeout: float = 120.0) -> tuple[int, str, float]:
    """Send `signum` once `ready()` holds; (exit code, output, seconds from the signal to the exit)."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                raise AssertionError(f"the command ended before it was signalled:\n{proc.stdout.read()}")
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting to signal the command")
            time.sleep(0.05)
        proc.send_signal(signum)
        sent = time.monotonic()
        code = proc.wait(timeout=60)
        return code, proc.stdout.read(), time.monotonic() - sent
    finally:
        proc.kill()


def _check_interrupted(out: Path, code: int, log: str, name: str, total: int) -> dict[str, dict]:
    """The exit code, the one summary line (its counts matching the store), and every record intact."""
    assert code == 128 + signal.Signals[name].value, log
    lines = SUMMARY.findall(log)
    assert len(lines) == 1, log
    said, done, of, remain = lines[0]
    records, bad = ResultsStore(out).scan()
    assert said == name and int(of) == total and not bad, log
    assert int(done) == sum(r["status"] == "done" for r in records) and int(remain) == total - int(done), log
    assert "results:" not in log and "Traceback" not in log, log
    return {r["run_id"]: r for r in records}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_local_grid_exits_128_plus_the_signal_and_keeps_its_records(tmp_path, name):
    out = tmp_path / "grid"
    args = [*GRID, "--launcher", "local", "--out", str(out)]
    code, log, took = _signal_when(_bench(args), lambda: _files(out / "runs", "*.json"), signal.Signals[name])
    before = _check_interrupted(out, code, log, name, total=4)
    assert 1 <= len(before) < 4 and took < 15, log  # prompt: it does not wait for the grid to end
    if name == "SIGINT":
        return
    # the same command resumes: it runs only what is not done, finished records stay untouched
    again = _bench(args)
    assert again.wait(timeout=120) == 0
    log = again.stdout.read()
    assert f"4 runs, {4 - len(before)} to do, {len(before)} already done" in log and "(0 failed)" in log, log
    after = {p.stem: json.loads(p.read_text()) for p in _files(out / "runs", "*.json")}
    assert len(after) == 4 and all(r["status"] == "done" for r in after.values())
    assert all(after[run_id] == record for run_id, record in before.items())


def test_an_interrupted_run_one_exits_130(tmp_path):
    out = tmp_path / "one"
    args = ["run", "one", "--method", "ce", "--dataset", "digits", "--epochs", "200", "--out", str(out)]
    code, log, _ = _signal_when(_bench(args), lambda: _files(out / "checkpoints", "*.pt"), signal.SIGINT)
    assert not _check_interrupted(out, code, log, "SIGINT", total=1)  # nothing finished, nothing stored


@pytest.mark.ray
@pytest.mark.slow
def test_an_interrupted_ray_grid_exits_130_not_0(tmp_path):
    out = tmp_path / "grid"
    args = [*GRID, "--epochs", "25", "--launcher", "ray", "--cpus-per-trial", "1", "--out", str(out)]
    code, log, took = _signal_when(_bench(args), lambda: _files(out / "runs", "*.json"), signal.SIGINT)
    records = _check_interrupted(out, code, log, "SIGINT", total=4)
    assert 1 <= len(records) < 4 and "0 failed" not in log and took < 45, log


def test_a_pickled_guard_carries_no_signal_handler():
    """Tune pickles its callbacks, which hold the launch's guard: a handler found on entry (here one bound to an
    object with a lock, as Tune's own SIGINT handler left over from an earlier fit() in the process) must not go
    with it, or the launch fails with "cannot pickle '_thread.lock' object"."""
    import pickle
    import signal
    import threading

    from ray import cloudpickle

    from bench.grid.launchers import InterruptGuard

    class Handler:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __call__(self, *args) -> None:
            pass

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, Handler())
    try:
        with InterruptGuard() as guard:
            copy = pickle.loads(cloudpickle.dumps(guard))
    finally:
        signal.signal(signal.SIGINT, before)
    assert copy._previous == {} and copy.received is None
