"""`bench tune` end to end under a real local Ray: 4 trials of 2 methods on digits with ASHA and TensorBoard,
resumed, then `run grid --hparams-from` runs the chosen settings."""
import json

import pandas as pd
import pytest

from tests.helpers import run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CELL = "digits:10:sym:0.4"
EPOCHS = 4


def test_tune_under_ray_selects_on_validation_and_the_grid_runs_the_choice(tmp_path, capsys):
    out, grid = tmp_path / "tune", tmp_path / "grid"
    argv = ["tune", "--preset", "quick", "--methods", "ce,dal", "--trials", "4", "--cell", CELL, "--epochs",
            str(EPOCHS), "--scheduler", "asha", "--grace-period", "1", "--reduction-factor", "2",
            "--logger", "tensorboard", "--cpus-per-trial", "1", "--out", str(out)]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    runs = pd.read_csv(out / "runs.csv", dtype={"tune_trial": str})
    epochs = pd.read_csv(out / "epochs.csv")
    assert len(runs) == 8 and sorted(runs.tune_trial) == ["0", "0", "1", "1", "2", "2", "3", "3"]
    assert set(runs.status) <= {"done", "stopped"} and (runs.status == "done").any()
    assert (runs.val_fraction == 0.1).all() and (runs.selected_on == "val_bal_acc").all()
    per_run = epochs.groupby("run_id").epoch.count()
    assert (per_run[runs[runs.status == "done"].run_id] == EPOCHS).all()
    assert (per_run[runs[runs.status == "stopped"].run_id] < EPOCHS).all()  # a stopped trial keeps its epochs
    assert {"val_acc", "val_bal_acc"} <= set(epochs.columns)

    choices = json.loads((out / "tuning.json").read_text())
    assert choices["scheduler"].startswith("asha") and choices["trials"] == 4 and choices["epochs"] == EPOCHS
    for choice in choices["chosen"]:
        mine = runs[(runs.method == choice["method"]) & (runs.status == "done")]
        # independently: the finished trial with the highest validation score (ties: the lower trial)
        best = mine.assign(t=mine.tune_trial.astype(int)).sort_values(["selected_val", "t"],
                                                                       ascending=[False, True]).iloc[0]
        assert choice["run_id"] == best.run_id and choice["selected_val"] == pytest.approx(best.selected_val)
        record = json.loads((out / "runs" / f"{best.run_id}.json").read_text())
        assert choice["lr"] == record["config"]["optim"]["lr"]
    # every trial that ran logged its epochs to TensorBoard under the results folder, by run id
    assert {p.name for p in (out / "tensorboard").iterdir()} == set(runs.run_id)

    # the same command again launches nothing and writes the same choices
    code, stdout, _ = run_cli(capsys, *argv)
    assert code == 0 and "8 runs, 0 to do, 8 already done" in stdout
    assert json.loads((out / "tuning.json").read_text())["chosen"] == choices["chosen"]

    # the grid with the chosen settings: on the same protocol and budget, exactly the chosen runs
    code, _, err = run_cli(capsys, "run", "grid", "--preset", "quick", "--methods", "ce,dal", "--cell", CELL,
                           "--epochs", str(EPOCHS), "--val-fraction", "0.1", "--hparams-from", str(out / "tuning.json"),
                           "--launcher", "local", "--out", str(grid))
    assert code == 0, err
    grid_runs = pd.read_csv(grid / "runs.csv")
    assert sorted(grid_runs.run_id) == sorted(c["run_id"] for c in choices["chosen"])
    assert (grid_runs.status == "done").all() and grid_runs.selected_acc.notna().all()
    code, table, _ = run_cli(capsys, "table", "--layout", "tuning", "--results", str(out))
    assert code == 0 and "| CE |" in table and "| DAL |" in table
    # the validation-selected accuracy of the grid's runs in a table, the statistics and the plots
    code, table, _ = run_cli(capsys, "table", "--results", str(grid), "--metric", "selected")
    selected = dict(zip(grid_runs.method, grid_runs.selected_acc))
    assert code == 0 and f"| CE | Selected | {selected['ce']:.2f}" in table.replace("**", "")
    assert run_cli(capsys, "stats", "--results", str(grid), "--metric", "selected")[0] == 0
    assert run_cli(capsys, "plots", "--results", str(grid), "--metric", "selected")[0] == 0
