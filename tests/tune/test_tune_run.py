"""`bench tune` planning, the choices file and `run grid --hparams-from`, without Ray."""
import json

import pytest

from bench.grid.launchers import LaunchOptions
from bench.grid.store import ResultsStore
from bench.tune.choices import apply_choices, load_choices
from bench.tune.run import TuneRequest, plan_tuning, write_choices
from tests.helpers import run_cli

CELL = "digits:10:sym:0.4"


def request(**changes):
    return TuneRequest(**{"preset": "quick", "trials": 4, "methods": ["ce", "dal"], "cells": [CELL],
                          "launcher": "local", "options": LaunchOptions(), **changes})


def test_every_method_gets_the_same_budget_data_and_split():
    trials, settings = plan_tuning(request())
    assert len(trials) == 8 and settings["trials"] == 4 and settings["objective"] == "val_bal_acc"
    assert {cfg.data for cfg in trials} == {trials[0].data}  # one protocol, split included, for every trial
    assert trials[0].data.val_fraction == 0.1 and {cfg.epochs for cfg in trials} == {trials[0].epochs}
    by_method = {m: [cfg for cfg in trials if cfg.method == m] for m in ("ce", "dal")}
    assert [cfg.tuning["trial"] for cfg in by_method["ce"]] == [0, 1, 2, 3]
    defaults = {m: plan_tuning(request(trials=2))[0][i] for i, m in enumerate(("ce", "dal"))}
    assert by_method["dal"][0].hparams == defaults["dal"].hparams  # trial 0 = the defaults
    assert len({cfg.run_id for cfg in trials}) == 8


def _record(cfg, val_curve, test_curve):
    """A finished record with these per-epoch validation and test accuracies (nothing trained)."""
    from bench.train.engine import selection_metric, summarize

    metric = selection_metric(cfg.data)
    rows = [{"epoch": e, "test_acc": t, metric: v, "train_loss": 1.0, "lr": 0.1, "sec_per_iter": 0.01,
             "sec_epoch": 0.1, "samples": 10} for e, (v, t) in enumerate(zip(val_curve, test_curve))]
    return {"run_id": cfg.run_id, "preset": cfg.preset, "config": cfg.to_dict(), "status": "done", "error": "",
            "epochs": rows, "summary": summarize(rows, [0.01], metric)}


def test_the_choices_file_never_picks_the_best_test_trial_with_the_worst_validation(tmp_path):
    trials, settings = plan_tuning(request())
    store = ResultsStore(tmp_path / "tune")
    curves = {0: ([30, 40, 35], [50, 55, 52]), 1: ([10, 12, 11], [90, 95, 93]),  # best test, worst validation
              2: ([41, 44, 44], [60, 58, 57]), 3: ([20, 25, 30], [70, 72, 74])}
    for cfg in trials:
        store.write(_record(cfg, *curves[cfg.tuning["trial"]]))
    path = write_choices(store, trials, settings)
    data = json.loads(path.read_text())
    assert data["trials"] == 4 and data["val_fraction"] == 0.1
    assert len(data["chosen"]) == 2
    for choice in data["chosen"]:
        # trial 2 peaks at 44 twice: the later epoch (2) is selected, so its selected test accuracy is 57
        assert (choice["trial"], choice["selected_val"], choice["selected_acc"]) == (2, 44.0, 57.0)
        cfg = next(c for c in trials if c.run_id == choice["run_id"])
        assert cfg.method == choice["method"] and cfg.optim.lr == choice["lr"]
        assert choice["hparams"] == {k: cfg.hparams[k] for k in choice["hparams"]}
    # and run grid --hparams-from gives every run its method's chosen values: the same runs as the chosen trials
    grid = plan_tuning(request(trials=2))[0][:2]
    applied = apply_choices(grid, load_choices(path))
    assert sorted(cfg.run_id for cfg in applied) == sorted(c["run_id"] for c in data["chosen"])


@pytest.mark.parametrize("argv, message", [
    (["--trials", "1"], "--trials must be an integer >= 2"),
    (["--val-fraction", "0"], "--val-fraction must be in (0, 0.5]"),
    (["--scheduler", "asha", "--launcher", "local"], "use --launcher ray"),
    (["--scheduler", "hyperband"], "unknown --scheduler 'hyperband'"),
    (["--search", "grid"], "unknown --search 'grid'"),
    (["--search", "optuna", "--scheduler", "asha"], "use --search random with asha"),
    (["--cell", "digits:5:sym:0.4"], "unknown cell of preset 'quick' 'digits:5:sym:0.4'"),
    (["--methods", "dynamic_loss-vector"], "ablation variant"),
    (["--logger", "tensorbord"], "did you mean 'tensorboard'"),
    (["--logger", "tensorboard", "--launcher", "local"], "--logger feeds Ray Tune's callbacks"),
    (["--scheduler", "asha", "--grace-period", "3"], "--grace-period 3 leaves no rung"),
])
def test_bad_tune_requests_are_refused_in_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "tune"
    base = ["tune", "--preset", "quick", "--methods", "ce,dal", "--trials", "3", "--out", str(out)]
    code, _, err = run_cli(capsys, *base, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_asha_is_refused_a_rung_inside_a_warm_up(capsys, tmp_path):
    code, _, err = run_cli(capsys, "tune", "--preset", "quick", "--methods", "dividemix", "--trials", "2",
                           "--epochs", "6", "--scheduler", "asha", "--grace-period", "1", "--out", str(tmp_path / "t"))
    assert code == 2 and "main phase starts at epoch" in err, err


@pytest.mark.parametrize("content, message", [
    (None, "cannot read it"), ("{", "not JSON"), ('{"chosen": 3}', "not a choices file"),
    ('{"chosen": []}', "no search in it has a finished trial"),
    ('{"chosen": [{"method": "ce", "dataset": "digits", "imbalance": 1, "noise": "sym", "noise_rate": 0.4, '
     '"hparams": {}}]}', "no tuned choice for ce on digits:10:sym:0.4"),
])
def test_bad_choices_files_are_refused_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "tuning.json"
    if content is not None:
        path.write_text(content)
    code, _, err = run_cli(capsys, "run", "grid", "--preset", "quick", "--methods", "ce", "--cell", CELL,
                           "--hparams-from", str(path), "--launcher", "local", "--out", str(tmp_path / "g"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "g").exists()


def test_optuna_suggests_from_validation_scores_and_a_rerun_replays_without_running(tmp_path, capsys):
    argv = ["tune", "--preset", "quick", "--methods", "ce,dal", "--trials", "3", "--cell", CELL, "--search", "optuna",
            "--launcher", "local", "--out", str(tmp_path / "t")]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "tuning: 6 trials run, 0 already done" in out, err
    import pandas as pd

    from bench.tune.space import space_of

    runs = pd.read_csv(tmp_path / "t" / "runs.csv", dtype={"tune_trial": str})
    assert sorted(runs.tune_trial) == ["0", "0", "1", "1", "2", "2"] and (runs.status == "done").all()
    dal = {t: json.loads(h) for t, h in zip(runs[runs.method == "dal"].tune_trial, runs[runs.method == "dal"].hparams)}
    assert (dal["0"]["q_start"], dal["0"]["q_end"]) == (0.6, 1.5)  # trial 0: the defaults
    for trial in ("1", "2"):
        assert all(space_of("dal")[k].contains(dal[trial][k]) for k in ("q_start", "q_end"))
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "tuning: 0 trials run, 6 already done" in out  # the same points, found by run id
    chosen = json.loads((tmp_path / "t" / "tuning.json").read_text())["chosen"]
    assert {c["method"] for c in chosen} == {"ce", "dal"}
