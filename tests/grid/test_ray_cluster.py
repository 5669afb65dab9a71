"""A real two-node Ray cluster on localhost runs a small grid; both nodes must run trials.

The cluster is two `ray start --block` processes (a head and a worker that joins it), each with
one CPU, a custom resource naming it, its own `--temp-dir` and its own free ports, so it never
touches another cluster on this machine. `--block` keeps each node's processes under one parent
that this test owns: SIGTERM to it shuts its node down, and Ray's fate sharing takes the node's
processes with it if the parent is killed; on Linux that parent in turn gets SIGTERM if pytest
itself dies. Teardown never calls `ray stop`, which would stop every Ray process on the machine
(other test sessions' clusters included).
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.train.envinfo import environment

#: custom resource of each node, which also tells the test which node id is which
NODE_RESOURCES = {"head": "bench_head_node", "worker": "bench_worker_node"}
START_TIMEOUT_S = 60
#: this checkout: the driver runs `python -m bench` from here, and Ray's workers import from here
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    address: str
    node_ids: dict[str, str]  # "head" / "worker" -> Ray node id
    env: dict[str, str]
    logs: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _node_command(name: str, temp_dir: Path, head_address: str | None) -> list[str]:
    """`ray start --block` for one node with 1 CPU, its custom resource and free ports."""
    # the `ray` CLI of this interpreter (a PATH lookup could find another installation)
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1", "--disable-usage-stats",
           "--temp-dir", str(temp_dir), "--resources", json.dumps({NODE_RESOURCES[name]: 1}),
           "--object-store-memory", str(100 * 1024**2)]
    for flag in ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"):
        cmd += [flag, str(_free_port())]
    if head_address is None:
        # Ray still starts a minimal dashboard process (usage stats): give it a free port too
        return cmd + ["--head", "--port", str(_free_port()), "--include-dashboard", "false",
                      "--dashboard-port", str(_free_port())]
    return cmd + ["--address", head_address, "--include-log-monitor", "false"]


#: resolved up front, so that the forked child only calls it (no library loading after fork)
_PRCTL = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


def _term_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent (pytest) dies, even by SIGKILL."""
    _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start one node in its own process group; it follows pytest if pytest is killed."""
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True,
                                preexec_fn=_term_with_parent if _PRCTL else None)  # noqa: PLW1509


def _wait_for_head(proc: subprocess.Popen, temp_dir: Path, log: Path) -> str:
    """The head's GCS address, read from the file `ray start` writes once the head is up."""
    address_file = temp_dir / "ray_current_cluster"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not address_file.exists() or not address_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the head node did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return address_file.read_text().strip()


PROBE = """
import json, sys, time
import ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[2])
while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
print(json.dumps({n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}))
"""


def _node_ids(address: str, env: dict[str, str]) -> dict[str, str]:
    """Wait until both nodes are alive; map 'head' / 'worker' to their node ids."""
    probe = subprocess.run([sys.executable, "-c", PROBE, address, str(START_TIMEOUT_S)], check=False,
                           capture_output=True, text=True, env=env, timeout=START_TIMEOUT_S + 30)
    assert probe.returncode == 0, probe.stderr[-3000:]
    alive = json.loads(probe.stdout.strip().splitlines()[-1])
    ids = {name: nid for nid, res in alive.items() for name, r in NODE_RESOURCES.items() if r in res}
    assert set(ids) == {"head", "worker"}, f"nodes alive: {alive}"
    return ids


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text` (Linux /proc; empty elsewhere)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:  # the process ended meanwhile
            continue
    return pids


def _stop(procs: list[subprocess.Popen], temp_root: Path) -> None:
    """Stop our nodes only: SIGTERM each `ray start --block`, then SIGKILL what is left of its
    process group and any process still naming our (unique) temp dir on its command line."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in _pids_mentioning(str(temp_root)):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def two_node_cluster() -> Iterator[Cluster]:
    # Not tmp_path: Ray puts Unix sockets under the temp dir, and their paths must stay short.
    root = Path(tempfile.mkdtemp(prefix="bench-rc-", dir="/tmp"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           # a SIGTERMed node shuts down at once instead of draining first
           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    procs: list[subprocess.Popen] = []
    try:
        head_log = root / "head.log"
        procs.append(_start(_node_command("head", root / "head", None), head_log, env))
        address = _wait_for_head(procs[0], root / "head", head_log)
        procs.append(_start(_node_command("worker", root / "worker", address), root / "worker.log", env))
        yield Cluster(address=address, node_ids=_node_ids(address, env), env=env, logs=root)
    finally:
        _stop(procs, root)
        left = _pids_mentioning(str(root))
        shutil.rmtree(root, ignore_errors=True)
        if left:
            pytest.fail(f"Ray processes of the test cluster survived teardown: {left}")


@pytest.mark.ray
@pytest.mark.slow
def test_grid_on_a_two_node_cluster_runs_trials_on_both_nodes(two_node_cluster, tmp_path, capsys):
    from bench.cli import main
    from bench.grid.presets import expand

    out = tmp_path / "shared-out"  # both nodes see this folder, as with a shared file system
    methods = ["ce", "balanced_softmax"]
    cmd = [sys.executable, "-m", "bench", "run", "grid", "--preset", "quick", "--methods", ",".join(methods),
           "--address", two_node_cluster.address, "--out", str(out)]
    # a trial larger than any node (1 CPU each) is refused with one line instead of pending for ever
    too_big = subprocess.run([*cmd, "--cpus-per-trial", "2"], check=False, capture_output=True, text=True,
                             env=two_node_cluster.env, cwd=REPO, timeout=120)
    refusal = [line for line in too_big.stderr.splitlines() if line.startswith("bench")]
    assert too_big.returncode == 2 and len(refusal) == 1, too_big.stderr[-3000:]
    assert "no node of the cluster" in refusal[0] and "the largest 1 CPUs" in refusal[0], refusal
    assert not list(out.glob("runs/*.json"))
    grid = subprocess.run(cmd, check=False, capture_output=True, text=True, env=two_node_cluster.env, cwd=REPO,
                          timeout=300)
    assert grid.returncode == 0, grid.stdout[-3000:] + grid.stderr[-3000:]

    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 and (runs.status == "done").all()
    # node ids are recorded, never hashed into run ids
    assert set(runs.run_id) == {cfg.run_id for cfg in expand("quick", methods=methods)}
    ran_on = {json.loads((out / "runs" / f"{rid}.json").read_text())["env"]["ray_node_id"] for rid in runs.run_id}
    assert ran_on == set(two_node_cluster.node_ids.values())

    # the tables come straight from the shared --out
    capsys.readouterr()
    assert main(["table", "--results", str(out), "--format", "csv"]) == 0
    assert "balanced_softmax" in capsys.readouterr().out


def test_environment_names_the_ray_node_only_inside_ray():
    import ray

    if ray.is_initialized():
        pytest.skip("another test left Ray initialised in this process")
    env = environment(torch.device("cpu"))
    assert env["ray"] == ray.__version__ and "ray_node_id" not in env


def test_git_commit_comes_from_the_environment_outside_a_checkout(tmp_path, monkeypatch):
    """A Ray job's uploaded working dir has no .git: BENCH_GIT_COMMIT names the commit instead."""
    from bench.train import envinfo

    monkeypatch.setattr(envinfo, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("BENCH_GIT_COMMIT", "0123abc")
    envinfo.git_commit.cache_clear()
    try:
        assert envinfo.git_commit() == "0123abc"
        monkeypatch.delenv("BENCH_GIT_COMMIT")
        envinfo.git_commit.cache_clear()
        assert envinfo.git_commit() == ""
    finally:
        envinfo.git_commit.cache_clear()


DOCS = REPO / "docs"


def test_the_cluster_launcher_example_passes_rays_own_schema():
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((DOCS / "ray_cluster.yaml").read_text()))
    validate_config(config)
    assert config["provider"]["type"] == "local"


def test_the_kuberay_example_runs_a_grid_command_bench_accepts():
    import yaml

    from bench.cli import build_parser

    job = yaml.safe_load((DOCS / "kuberay_rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert job["spec"]["rayClusterSpec"]["authOptions"] == {"mode": "token"}
    python, m, module, *argv = job["spec"]["entrypoint"].split()
    assert (python, m, module) == ("python", "-m", "bench")
    args = build_parser().parse_args(argv)
    assert args.address == "auto" and Path(args.out).is_absolute()
    assert "BENCH_GIT_COMMIT" in yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]
