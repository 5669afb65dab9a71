"""The `quick` preset end to end under a real local Ray cluster."""
import json

import pandas as pd
import pytest

from bench.cli import main
from bench.grid.store import EPOCH_COLUMNS, RUN_COLUMNS
from methods import METHODS

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_quick_grid_under_ray_then_resume_and_extend(tmp_path, capsys):
    out = tmp_path / "quick"
    assert main(["run", "grid", "--preset", "quick", "--out", str(out), "--cpus-per-trial", "1"]) == 0
    printed = capsys.readouterr()
    # the comparison table at the end, and nothing of Ray's or Tune's own (no --verbose)
    assert "| CE | Last |" in printed.out and f"--results {out}" in printed.out
    assert "View detailed results" not in printed.out + printed.err and "Started a local Ray" not in printed.err
    n = 4 * len(METHODS.default_names())
    runs = pd.read_csv(out / "runs.csv")
    epochs = pd.read_parquet(out / "epochs.parquet")
    assert list(runs.columns) == RUN_COLUMNS and list(epochs.columns)[: len(EPOCH_COLUMNS)] == EPOCH_COLUMNS
    assert len(runs) == n and (runs.status == "done").all()
    assert set(runs.method) == set(METHODS.default_names())
    assert sorted(set(zip(runs.imbalance, runs.noise_rate))) == [(1, 0.0), (1, 0.4), (10, 0.0), (10, 0.4)]
    assert runs.last_acc.between(0, 100).all() and (runs.best_acc >= runs.last_acc).all()
    assert (runs.sec_per_iter > 0).all() and (runs.colocated >= 1).all()
    assert len(epochs) == n * 3 and set(epochs.run_id) == set(runs.run_id)
    # the last epoch's accuracy in the epoch table is the run's last_acc
    last = epochs.sort_values("epoch").groupby("run_id").test_acc.last()
    assert (runs.set_index("run_id").last_acc == last.loc[runs.run_id].values).all()
    record = json.loads((out / "runs" / f"{runs.run_id[0]}.json").read_text())
    assert record["env"]["ray"] and "git_commit" in record and record["config"]["method"] in METHODS
    # Tune's own files (which it unpickles) never go to the shared results folder
    assert not (out / ".ray").exists() and {p.name for p in out.iterdir()} <= {
        "runs", "checkpoints", "runs.csv", "epochs.csv", "runs.parquet", "epochs.parquet", ".lock"}

    # the same command again launches nothing
    capsys.readouterr()
    assert main(["run", "grid", "--preset", "quick", "--out", str(out)]) == 0
    assert f"{n} runs, 0 to do, {n} already done" in capsys.readouterr().out

    # a new seed for one method runs only what is new
    assert main(["run", "grid", "--preset", "quick", "--out", str(out), "--seeds", "0,1", "--methods", "ce"]) == 0
    assert "8 runs, 4 to do, 4 already done" in capsys.readouterr().out
    assert len(pd.read_csv(out / "runs.csv")) == n + 4
