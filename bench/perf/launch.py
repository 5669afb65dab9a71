"""`bench perf --launcher`: what the Ray launcher costs per trial against the local one.

Each measurement runs the work of the user's own command, `python -m bench run grid --preset P
--launcher L --out <fresh temporary folder>`, in a fresh child process, so nothing is skipped as
already done and no launcher profits from caches the other warmed. The child calls the same
library function the command does (`bench.grid.run.run_grid`) with observers: the launcher's
hooks (its phases and a Tune callback) and a results-store listener. They split the wall time
into measured phases:

    interpreter start | imports | planning | launcher: [ray.init | Tuner setup | first worker
    started | trials | experiment end | ray.shutdown] | exit

Ray's overhead per trial is (ray wall - local wall) / runs, the issue's definition. It is a net
figure: Ray also runs `#CPUs / cpus-per-trial` trials at once, each with `cpus-per-trial` torch
threads, while the local launcher runs one at a time with torch's default thread count. Ray's own
cost per trial (its one-off phases spread over the runs, plus its per-run time outside
`run_trial`) is reported beside it and does not depend on either.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError

#: the issue's target for Ray's overhead on 2 cores, seconds per trial
TARGET_S_PER_TRIAL = 1.5
LAUNCHERS = ("local", "ray")

# --------------------------------------------------------------------------- child side
#: timestamps (time.time()) collected in the child; module level because Tune may copy callbacks
_MARKS: dict[str, Any] = {}


def _mark(name: str) -> None:
    """Note when `name` happened: the first time for a start, the last time for an end."""
    if name.endswith("_end"):
        _MARKS[name] = time.time()
    else:
        _MARKS.setdefault(name, time.time())


def _timing_callback() -> Any:
    """A Tune callback noting each trial's start, first result and final record (driver clock)."""
    from ray import tune

    seen: dict[str, dict[str, float]] = _MARKS.setdefault("trials", {})

    class TimingCallback(tune.Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            seen.setdefault(trial.trial_id, {})["start"] = time.time()

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            now = time.time()
            times = seen.setdefault(trial.trial_id, {})
            times.setdefault("first_result", now)
            if "record_json" in result:
                record = json.loads(result["record_json"])
                times["end"] = now
                times["in_trial"] = record["summary"]["sec_total"]
                times["threads"] = record.get("env", {}).get("torch_threads", 0)

    return TimingCallback()


def _stored(launcher: str) -> Any:
    """A results-store listener: each write's duration, and (local) each run's in-trial time."""
    _MARKS["store_writes"] = []

    def listener(record: dict[str, Any], seconds: float) -> None:
        _MARKS["store_writes"].append(seconds)
        if launcher == "local":
            _MARKS.setdefault("local_in_trial", []).append(record["summary"]["sec_total"])
            _MARKS.setdefault("local_threads", []).append(record.get("env", {}).get("torch_threads", 0))

    return listener


def child_main(spec_path: str) -> int:
    """Entry point of one measurement's child: run the grid, write the marks as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    _MARKS["main_start"] = time.time()
    from bench.grid.launchers import LaunchHooks, LaunchOptions
    from bench.grid.run import GridRequest, run_grid

    launcher = spec["launcher"]
    hooks = LaunchHooks(on_event=_mark, tune_callbacks=[_timing_callback()] if launcher == "ray" else [])
    if launcher == "ray":
        import ray.tune  # noqa: F401  (imported here as `bench run grid` imports it: before planning)
    _MARKS["imported"] = time.time()

    request = GridRequest(preset=spec["preset"], methods=spec["methods"], out=Path(spec["out"]), launcher=launcher,
                          options=LaunchOptions(device=spec["device"]))
    outcome = run_grid(request, hooks=hooks, on_stored=_stored(launcher))
    _MARKS["main_end"] = time.time()
    _MARKS["exit_code"] = 1 if outcome.failed else 0
    Path(spec["marks"]).write_text(json.dumps(_MARKS))
    return _MARKS["exit_code"]


# -------------------------------------------------------------------------- parent side
def grid_command(preset: str, launcher: str, out: str, methods: list[str] | None, device: str) -> str:
    """The `bench` command whose work is measured."""
    argv = ["run", "grid", "--preset", preset, "--launcher", launcher, "--out", out, "--device", device]
    return "python -m bench " + " ".join(argv + (["--methods", ",".join(methods)] if methods else []))


def measure_launcher(preset: str, launcher: str, methods: list[str] | None = None, device: str = "cpu") -> dict[str, Any]:
    """Run the grid once with `launcher` in a fresh process and fresh `--out`; return its timings."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-launch-{launcher}-"))
    try:
        spec = {"launcher": launcher, "preset": preset, "methods": methods, "out": str(work / "out"),
                "device": device, "marks": str(work / "marks.json")}
        (work / "spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
        started = time.time()
        with open(work / "log.txt", "w") as log:
            proc = subprocess.run([sys.executable, "-m", "bench.perf.launch", str(work / "spec.json")], check=False,
                                  stdout=log, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).resolve().parents[2])
        wall = time.time() - started
        marks_file = work / "marks.json"
        if proc.returncode != 0 or not marks_file.exists():
            tail = (work / "log.txt").read_text()[-2000:]
            command = grid_command(preset, launcher, spec["out"], methods, device)
            raise RuntimeError(f"`{command}` exited with {proc.returncode}:\n{tail}")
        marks = json.loads(marks_file.read_text())
        runs = len(marks["store_writes"])
        return {"launcher": launcher, "runs": runs, "wall_s": wall, **phases(marks, started, started + wall)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def phases(marks: dict[str, Any], spawned: float, exited: float) -> dict[str, Any]:
    """Split one measured command into phases (seconds) from the child's timestamps."""
    out = {
        "startup_s": marks["main_start"] - spawned,
        "imports_s": marks["imported"] - marks["main_start"],
        "planning_s": marks["launch_start"] - marks["imported"],
        "launch_s": marks["launch_end"] - marks["launch_start"],
        "after_launch_s": exited - marks["launch_end"],
        "store_write_s": sum(marks["store_writes"]),
    }
    if "local_in_trial" in marks:
        out["in_trial_s"] = sum(marks["local_in_trial"])
        out["torch_threads"] = sorted(set(marks.get("local_threads", [])))
    trials = [t for t in marks.get("trials", {}).values() if {"start", "end", "in_trial"} <= set(t)]
    if trials and "ray_init_end" in marks:
        first_start = min(t["start"] for t in trials)
        last_end = max(t["end"] for t in trials)
        out.update({
            "ray_init_s": marks["ray_init_end"] - marks["ray_init_start"],
            "tuner_setup_s": marks["fit_start"] - marks["ray_init_end"],
            "worker_start_s": first_start - marks["fit_start"],
            "first_result_s": min(t["first_result"] for t in trials) - first_start,
            "trials_span_s": last_end - first_start,
            "experiment_end_s": marks["fit_end"] - last_end,
            "ray_shutdown_s": marks.get("ray_shutdown_end", marks["launch_end"]) - marks["fit_end"],
            "in_trial_s": sum(t["in_trial"] for t in trials),
            "per_trial_gap_s": sum(t["end"] - t["start"] - t["in_trial"] for t in trials) / len(trials),
        })
        out["ray_fixed_s"] = sum(out[k] for k in RAY_FIXED)
        # what Ray itself costs per run: its one-off phases spread over the runs, plus the per-run gap
        out["ray_own_s_per_trial"] = out["ray_fixed_s"] / len(trials) + out["per_trial_gap_s"]
        out["torch_threads"] = sorted({t.get("threads", 0) for t in trials})
    return out


#: the phases a Ray launch pays once, whatever the number of runs
RAY_FIXED = ("ray_init_s", "tuner_setup_s", "worker_start_s", "experiment_end_s", "ray_shutdown_s")


def overhead_per_trial(local: dict[str, Any], ray: dict[str, Any]) -> float:
    """(ray wall - local wall) / runs, the issue's definition."""
    if local["runs"] != ray["runs"] or not ray["runs"]:
        raise ValueError(f"launchers ran different grids: {local['runs']} vs {ray['runs']} runs")
    return (ray["wall_s"] - local["wall_s"]) / ray["runs"]


def run_launch_perf(
    preset: str = "quick", launchers: tuple[str, ...] = LAUNCHERS, methods: list[str] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Time `run grid` under each launcher; with both, Ray's overhead per trial against the target."""
    from bench.grid.presets import expand

    unknown = set(launchers) - set(LAUNCHERS)
    if unknown or not launchers:
        raise UsageError(f"unknown launcher(s) {sorted(unknown)}; choose from {', '.join(LAUNCHERS)}")
    planned = len({cfg.run_id for cfg in expand(preset, methods=methods)})
    result: dict[str, Any] = {
        "preset": preset, "methods": methods, "planned_runs": planned, "cpu_count": os.cpu_count() or 0,
        "target_s_per_trial": TARGET_S_PER_TRIAL,
        "launchers": {name: measure_launcher(preset, name, methods, device) for name in launchers},
    }
    if {"local", "ray"} <= set(launchers):
        result["overhead_s_per_trial"] = overhead_per_trial(result["launchers"]["local"], result["launchers"]["ray"])
    return result


#: (key, label) of the phases, in the order they happen
PHASE_ROWS = [
    ("startup_s", "interpreter start"),
    ("imports_s", "imports (bench, torch, ray.tune)"),
    ("planning_s", "planning, data check"),
    ("ray_init_s", "  ray.init (local cluster start)"),
    ("tuner_setup_s", "  Tuner setup"),
    ("worker_start_s", "  fit() -> first trial running"),
    ("trials_span_s", "  first trial start -> last record"),
    ("experiment_end_s", "  experiment end (state files)"),
    ("ray_shutdown_s", "  ray.shutdown"),
    ("launch_s", "launcher total"),
    ("after_launch_s", "after the launcher, exit"),
    ("wall_s", "wall"),
    ("in_trial_s", "sum of in-trial time (run_trial)"),
    ("store_write_s", "sum of results-store writes"),
    ("ray_fixed_s", "Ray one-off costs (indented, no trials)"),
    ("per_trial_gap_s", "Ray per trial, outside run_trial"),
    ("ray_own_s_per_trial", "Ray's own cost per trial (both above)"),
    ("first_result_s", "first trial: start -> first epoch"),
]


def format_launch_perf(result: dict[str, Any]) -> str:
    """A text table of `run_launch_perf`'s result: phases per launcher, then the overhead line."""
    names = list(result["launchers"])
    runs = "/".join(str(n) for n in sorted({r["runs"] for r in result["launchers"].values()}))
    methods = f" ({','.join(result['methods'])})" if result["methods"] else ""
    lines = [
        f"preset {result['preset']}: {runs} runs{methods}, {result['cpu_count']} CPUs",
        f"{'seconds':<40}" + "".join(f"{n:>10}" for n in names),
    ]
    for key, label in PHASE_ROWS:
        cells = [result["launchers"][n].get(key) for n in names]
        if any(c is not None for c in cells):
            lines.append(f"{label:<40}" + "".join(f"{'-' if c is None else f'{c:.2f}':>10}" for c in cells))
    threads = {n: r["torch_threads"] for n, r in result["launchers"].items() if r.get("torch_threads")}
    if threads:
        lines.append("torch threads per trial: " + ", ".join(f"{n} {'/'.join(map(str, t))}" for n, t in threads.items()))
    if "overhead_s_per_trial" in result:
        over = result["overhead_s_per_trial"]
        verdict = "within" if over <= result["target_s_per_trial"] else "OVER"
        lines.append(f"Ray overhead: (ray wall - local wall) / runs = {over:.2f} s per trial "
                     f"({verdict} the {result['target_s_per_trial']} s target)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
