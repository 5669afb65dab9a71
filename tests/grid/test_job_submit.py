"""`ray job submit`, run the way the README tells users to (section "Submitting a grid").

One local head node with the dashboard (the Jobs API) is started as a `ray start --block` process with
its own `--temp-dir` and free ports, like the nodes of `test_ray_cluster.py`, whose helpers this file
reuses; teardown stops that process only (never `ray stop`). Every grid is submitted with the
README's command, `ray job submit --working-dir . --runtime-env-json … -- python -m bench run grid …
--address auto --out <absolute path>`, from this checkout:

- a submission that waits stores every run; the same submission again runs nothing;
- a `--no-wait` submission stopped mid-grid with `ray job stop` leaves intact records only, and the
  same submission again completes the grid with every run done exactly once and nothing lost.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from test_ray_cluster import REPO, _free_port, _pids_mentioning, _start, _stop, _wait_for_head

START_TIMEOUT_S = 90
JOB_TIMEOUT_S = 240
#: the smallest grid: digits, MLP, 4 cells x 1 seed, 3 epochs, one method
QUICK = ["--preset", "quick", "--methods", "ce"]
#: a grid long enough to stop mid-way: 4 cells x 3 seeds, 60 epochs each
LONG = ["--preset", "quick", "--methods", "ce", "--seeds", "0,1,2", "--epochs", "60"]


@dataclass
class Head:
    dashboard: str  # http://127.0.0.1:<port>, the Jobs API
    env: dict[str, str]  # of the `ray job` commands
    root: Path  # everything the test writes (Ray's temp dir, the head's log, results folders)


def _head_command(temp_dir: Path, dashboard_port: int) -> list[str]:
    """`ray start --head --block` with 2 CPUs, the dashboard on 127.0.0.1 and free ports everywhere."""
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus", "2",
           "--disable-usage-stats", "--temp-dir", str(temp_dir), "--object-store-memory", str(100 * 1024**2),
           "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port)]
    for flag in ("--port", "--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
                 "--ray-client-server-port"):
        cmd += [flag, str(_free_port())]
    return cmd


def _wait_for_jobs_api(proc: subprocess.Popen, dashboard: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{dashboard}/api/jobs/", timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the dashboard's Jobs API at {dashboard} did not answer within {START_TIMEOUT_S}s:\n"
                        f"{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    # Not tmp_path: Ray puts Unix sockets under its temp dir, and their paths must stay short.
    root = Path(tempfile.mkdtemp(prefix="bench-js-", dir="/tmp"))
    # `python` in the job's entrypoint must be this interpreter, with this checkout installed
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):  # only the --address given below
        env.pop(name, None)
    procs: list[subprocess.Popen] = []
    try:
        log = root / "head.log"
        dashboard = f"http://127.0.0.1:{_free_port()}"
        procs.append(_start(_head_command(root / "ray", int(dashboard.rsplit(":", 1)[1])), log, env))
        _wait_for_head(procs[0], root / "ray", log)
        _wait_for_jobs_api(procs[0], dashboard, log)
        yield Head(dashboard=dashboard, env=env, root=root)
    finally:
        if procs and procs[0].poll() is None:
            _stop_unfinished_jobs(dashboard, env)
        # our job drivers are named by their --out, under root, so `_stop` ends them too
        _stop(procs, root)
        left = _pids_mentioning(str(root))
        shutil.rmtree(root, ignore_errors=True)
        if left:
            pytest.fail(f"Ray processes of the test head survived teardown: {left}")


def _stop_unfinished_jobs(dashboard: str, env: dict[str, str]) -> None:
    """A test that failed mid-job leaves no driver running."""
    try:
        with urllib.request.urlopen(f"{dashboard}/api/jobs/", timeout=5) as reply:
            jobs = json.load(reply)
    except (urllib.error.URLError, OSError, ValueError):
        return
    for job in jobs:
        if job.get("status") in ("PENDING", "RUNNING") and job.get("submission_id"):
            _ray(["job", "stop", "--address", dashboard, job["submission_id"]], env, timeout=60, check=False)


def _ray(args: list[str], env: dict[str, str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    """The `ray` CLI of this interpreter (a PATH lookup could find another installation), run from the
    checkout as a user would run it."""
    cmd = [sys.executable, "-m", "ray.scripts.scripts", *args]
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"`ray {' '.join(args[:2])}` did not end within {timeout:.0f}s; its output:\n{out[-6000:]}")
    if check and done.returncode != 0:
        pytest.fail(f"`ray {' '.join(args)}` exited {done.returncode}:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}")
    return done


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], check=True, capture_output=True, text=True,
                          cwd=REPO).stdout.strip()


def _submit(head: Head, grid: list[str], out: Path, wait: bool = True) -> tuple[str, str]:
    """The README's command; returns the job id and (when waiting) the job's log as the CLI tailed it."""
    assert out.is_absolute()
    runtime_env = json.dumps({"env_vars": {"BENCH_GIT_COMMIT": _commit()}})
    args = ["job", "submit", "--address", head.dashboard, "--working-dir", ".", "--runtime-env-json", runtime_env,
            *(["--no-wait"] if not wait else []),
            "--", "python", "-m", "bench", "run", "grid", *grid, "--address", "auto", "--out", str(out)]
    done = _ray(args, head.env, timeout=JOB_TIMEOUT_S, check=False)
    found = re.search(r"Job '(raysubmit_\w+)' submitted successfully", done.stdout + done.stderr)
    job_id = found.group(1) if found else ""
    if done.returncode != 0 or not job_id:
        logs = _job_logs(head, job_id) if job_id else ""
        pytest.fail(f"`ray job submit` exited {done.returncode} (job {job_id or '?'}):\n{done.stdout[-6000:]}\n"
                    f"{done.stderr[-3000:]}\njob logs:\n{logs[-6000:]}")
    if wait:
        status = _job_status(head, job_id)
        assert status == "SUCCEEDED", f"job {job_id} ended {status}:\n{_job_logs(head, job_id)[-6000:]}"
    return job_id, done.stdout


def _job_info(head: Head, job_id: str) -> dict:
    with urllib.request.urlopen(f"{head.dashboard}/api/jobs/{job_id}", timeout=10) as reply:
        return json.load(reply)


def _job_status(head: Head, job_id: str) -> str:
    return _job_info(head, job_id)["status"]


def _job_logs(head: Head, job_id: str) -> str:
    try:
        with urllib.request.urlopen(f"{head.dashboard}/api/jobs/{job_id}/logs", timeout=10) as reply:
            return json.load(reply).get("logs", "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"(no logs: {exc})"


def _planned(grid: list[str]) -> set[str]:
    """The run ids `grid` plans (what `bench run grid` would run in an empty folder)."""
    from bench.cli import build_parser
    from bench.grid.presets import expand

    args = build_parser().parse_args(["run", "grid", *grid])
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    return {cfg.run_id for cfg in expand(args.preset, methods=args.methods, seeds=seeds,
                                         epochs=args.epochs)}


def _expect_in_log(line: str, log: str, what: str) -> None:
    assert line in log, f"{what}: the job's log does not say '{line}'; its end:\n{log[-4000:]}"


def _record_files(out: Path) -> dict[str, bytes]:
    """run id -> the bytes of its record file (none before the folder exists)."""
    return {p.stem: p.read_bytes() for p in sorted((out / "runs").glob("*.json"))}


def _check_complete(out: Path, planned: set[str], commit: str, log: str = "") -> None:
    """Every planned run is done once in the store: one valid record, one row, its epoch rows once each."""
    from bench.grid.store import ResultsStore

    records, bad = ResultsStore(out).scan()
    assert not bad, f"unusable records: {bad}\n{log[-3000:]}"
    assert {r["run_id"] for r in records} == planned, log[-3000:]
    assert all(r["status"] == "done" for r in records), [r.get("error") for r in records]
    # the job ran the uploaded copy of this checkout (no .git there: the commit comes from the runtime env)
    assert {r["git_commit"] for r in records} == {commit}
    assert all(r["env"].get("ray_node_id") for r in records)  # trials ran under Ray
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs.run_id) == sorted(planned) and (runs.status == "done").all()
    epochs = pd.read_csv(out / "epochs.csv")
    assert not epochs.duplicated(["run_id", "epoch"]).any()
    assert len(epochs) == sum(r["config"]["epochs"] for r in records)


@pytest.mark.ray
@pytest.mark.slow
def test_submitted_grid_is_stored_and_a_second_submission_runs_nothing(head):
    out = head.root / "out-quick"
    planned = _planned(QUICK)
    job_id, log = _submit(head, QUICK, out)
    _expect_in_log(f"{len(planned)} runs, {len(planned)} to do, 0 already done in {out}", log, "first submission")
    _expect_in_log(f"results: {out / 'runs.csv'} (0 failed)", log, "first submission")
    _check_complete(out, planned, _commit(), log)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "runs").glob("*.json")}
    tables = {name: (out / name).read_bytes() for name in ("runs.csv", "epochs.csv")}

    job_id, log = _submit(head, QUICK, out)
    _expect_in_log(f"{len(planned)} runs, 0 to do, {len(planned)} already done in {out}", log,
                   "the second submission must run nothing")
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "runs").glob("*.json")}
    assert after == before, "the second submission wrote run records"
    assert {name: (out / name).read_bytes() for name in tables} == tables, "the second submission changed the tables"


@pytest.mark.ray
@pytest.mark.slow
def test_job_stopped_mid_grid_leaves_a_folder_the_next_submission_completes(head):
    from bench.grid.store import ResultsStore

    out = head.root / "out-long"
    planned = _planned(LONG)
    job_id, _ = _submit(head, LONG, out, wait=False)

    # stop it once a run is stored, long before the grid ends
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not _record_files(out):
        status = _job_status(head, job_id)
        if status not in ("PENDING", "RUNNING") or time.monotonic() > deadline:
            pytest.fail(f"job {job_id} is {status} and stored no run:\n{_job_logs(head, job_id)[-6000:]}")
        time.sleep(0.1)
    stop = _ray(["job", "stop", "--address", head.dashboard, job_id], head.env, timeout=120)
    assert _job_status(head, job_id) == "STOPPED", stop.stdout[-3000:]
    stopped_log = _job_logs(head, job_id)

    # what the stopped job left: valid, finished records only, and not all of them
    records, bad = ResultsStore(out).scan()
    assert not bad, f"the stopped job left unusable records: {bad}\n{stopped_log[-3000:]}"
    assert records and all(r["status"] == "done" for r in records), stopped_log[-3000:]
    assert {r["run_id"] for r in records} < planned, f"the grid ended before the stop:\n{stopped_log[-3000:]}"
    kept = _record_files(out)
    print(f"job {job_id} stopped with {len(kept)} of {len(planned)} runs stored")

    _, log = _submit(head, LONG, out)
    _expect_in_log(f"{len(planned)} runs, {len(planned) - len(kept)} to do, {len(kept)} already done in {out}",
                   log, "the resumed submission must run exactly the runs the stopped job left")
    _check_complete(out, planned, _commit(), log)
    # nothing lost and nothing re-run: the records stored before the stop are untouched
    changed = sorted(rid for rid, data in kept.items() if _record_files(out).get(rid) != data)
    assert not changed, f"records stored before the stop were lost or rewritten: {changed}"


def test_the_working_dir_upload_fits_rays_limit(tmp_path):
    """`--working-dir .` zips the checkout as Ray does (without .git and git-ignored files); Ray refuses
    a package over GCS_STORAGE_MAX_SIZE and warns from half of it."""
    from ray._private import ray_constants
    from ray._private.runtime_env.packaging import PACKAGE_SIZE_WARNING, _zip_files

    package = tmp_path / "pkg.zip"
    _zip_files(str(REPO), ray_constants.get_runtime_env_default_excludes(), str(package), include_gitignore=True)
    size = package.stat().st_size
    assert size < PACKAGE_SIZE_WARNING, f"the uploaded checkout would be {size / 2**20:.0f} MiB"
    names = set(zipfile.ZipFile(package).namelist())
    assert "bench/__main__.py" in names and not any(n.startswith(".git/") for n in names)
