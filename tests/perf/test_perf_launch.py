"""`bench perf --launcher`: phase arithmetic, the overhead formula, the CLI, one real measurement."""
import json

import pytest

from bench.cli import main
from bench.core.errors import UsageError
from bench.perf import launch as perf_launch
from bench.perf.launch import (
    format_launch_perf,
    overhead_per_trial,
    phases,
    run_launch_perf,
)

T0 = 1000.0


def ray_marks() -> dict:
    """Child timestamps of a made-up Ray launch of 2 runs (seconds after T0)."""
    at = {k: T0 + v for k, v in {
        "main_start": 0.5, "imported": 3.0, "launch_start": 3.5, "ray_init_start": 3.6, "ray_init_end": 7.6,
        "tuner_init": 7.7, "fit_start": 8.0, "fit_end": 20.5, "ray_shutdown_start": 20.6,
        "ray_shutdown_end": 21.5, "launch_end": 21.6, "main_end": 21.7}.items()}
    at["store_writes"] = [0.1, 0.2]
    at["trials"] = {
        "a": {"start": T0 + 14.0, "first_result": T0 + 16.0, "end": T0 + 18.0, "in_trial": 3.5, "threads": 1},
        "b": {"start": T0 + 14.5, "first_result": T0 + 16.5, "end": T0 + 20.0, "in_trial": 5.0, "threads": 1},
        "never-started": {"first_result": T0 + 19.0},
    }
    return at


def test_ray_phases_come_from_the_child_timestamps():
    p = phases(ray_marks(), spawned=T0, exited=T0 + 22.0)
    assert p.pop("torch_threads") == [1]
    expected = {
        "startup_s": 0.5, "imports_s": 2.5, "planning_s": 0.5, "launch_s": 18.1, "after_launch_s": 0.4,
        "store_write_s": 0.3, "ray_init_s": 4.0, "tuner_setup_s": 0.4, "worker_start_s": 6.0,
        "first_result_s": 2.0, "trials_span_s": 6.0, "experiment_end_s": 0.5, "ray_shutdown_s": 1.0,
        "in_trial_s": 8.5, "per_trial_gap_s": ((4.0 - 3.5) + (5.5 - 5.0)) / 2, "ray_fixed_s": 11.9,
        "ray_own_s_per_trial": 11.9 / 2 + 0.5,
    }
    assert p == pytest.approx(expected)
    # the top-level phases add up to the wall time the parent measured
    assert sum(p[k] for k in ("startup_s", "imports_s", "planning_s", "launch_s", "after_launch_s")) == pytest.approx(22.0)


def test_local_phases_sum_the_in_trial_time_of_each_record():
    marks = {"main_start": T0 + 0.5, "imported": T0 + 2.0, "launch_start": T0 + 2.5, "launch_end": T0 + 12.0,
             "store_writes": [0.1, 0.1, 0.2], "local_in_trial": [3.0, 3.0, 3.0], "local_threads": [2, 2, 2]}
    p = phases(marks, spawned=T0, exited=T0 + 12.5)
    assert p["in_trial_s"] == pytest.approx(9.0) and p["launch_s"] == pytest.approx(9.5)
    assert p["torch_threads"] == [2]
    assert "ray_init_s" not in p


def _result(local_wall: float, ray_wall: float, runs: int = 8) -> dict:
    return {
        "preset": "quick", "methods": ["ce", "dal"], "planned_runs": runs, "cpu_count": 2, "target_s_per_trial": 1.5,
        "launchers": {"local": {"launcher": "local", "runs": runs, "wall_s": local_wall, "in_trial_s": 9.0,
                                "torch_threads": [2]},
                      "ray": {"launcher": "ray", "runs": runs, "wall_s": ray_wall, "ray_init_s": 4.0,
                              "tuner_setup_s": 0.4, "worker_start_s": 6.0, "experiment_end_s": 0.5,
                              "ray_shutdown_s": 1.0, "ray_fixed_s": 11.9, "torch_threads": [1]}},
    }


def test_overhead_is_the_wall_difference_per_run_and_the_table_says_whether_it_meets_the_target():
    r = _result(local_wall=20.0, ray_wall=32.0)
    assert overhead_per_trial(r["launchers"]["local"], r["launchers"]["ray"]) == pytest.approx(1.5)
    r["overhead_s_per_trial"] = 1.5
    text = format_launch_perf(r)
    assert "8 runs (ce,dal), 2 CPUs" in text and "1.50 s per trial (within the 1.5 s target)" in text
    assert "ray.init" in text and "11.90" in text  # Ray's once-per-grid costs
    assert "torch threads per trial: local 2, ray 1" in text
    r["overhead_s_per_trial"] = 2.0
    assert "OVER" in format_launch_perf(r)
    with pytest.raises(ValueError, match="different grids"):
        overhead_per_trial({"runs": 8, "wall_s": 1.0}, {"runs": 7, "wall_s": 2.0})


def test_cli_wires_launcher_and_preset_and_prints_json(monkeypatch, capsys):
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return _result(20.0, 24.0)

    monkeypatch.setattr(perf_launch, "run_launch_perf", fake)
    assert main(["perf", "--launcher", "both", "--preset", "quick", "--methods", "ce,dal", "--json"]) == 0
    assert calls == [{"preset": "quick", "launchers": ("local", "ray"), "methods": ["ce", "dal"], "device": "cpu"}]
    assert json.loads(capsys.readouterr().out)["launchers"]["ray"]["wall_s"] == 24.0
    assert main(["perf", "--launcher", "ray"]) == 0
    assert calls[-1]["launchers"] == ("ray",) and calls[-1]["preset"] == "quick"


def test_bad_names_fail_before_anything_runs():
    with pytest.raises(UsageError):
        run_launch_perf(launchers=("slurm",))
    with pytest.raises(UsageError):
        run_launch_perf(methods=["no-such-method"])


@pytest.mark.ray
@pytest.mark.slow
def test_a_real_measurement_of_both_launchers_on_a_small_grid():
    r = run_launch_perf(preset="quick", methods=["ce", "balanced_softmax"])
    local, ray = r["launchers"]["local"], r["launchers"]["ray"]
    assert r["planned_runs"] == local["runs"] == ray["runs"] == 8
    assert r["overhead_s_per_trial"] == pytest.approx((ray["wall_s"] - local["wall_s"]) / 8)
    for timings in (local, ray):
        assert all(v >= 0 for k, v in timings.items() if k.endswith("_s")), timings
        top = sum(timings[k] for k in ("startup_s", "imports_s", "planning_s", "launch_s", "after_launch_s"))
        assert top == pytest.approx(timings["wall_s"], abs=0.05)
    ray_parts = sum(ray[k] for k in ("ray_init_s", "tuner_setup_s", "worker_start_s", "trials_span_s",
                                     "experiment_end_s", "ray_shutdown_s"))
    assert ray_parts <= ray["launch_s"] + 0.05 and ray_parts > 0.9 * ray["launch_s"]
    assert 0 < ray["in_trial_s"] and 0 < local["in_trial_s"] <= local["launch_s"]
    assert ray["ray_own_s_per_trial"] == pytest.approx(ray["ray_fixed_s"] / 8 + ray["per_trial_gap_s"])
    assert ray["torch_threads"] == [1]  # --cpus-per-trial 1
    assert "Ray overhead" in format_launch_perf(r)
