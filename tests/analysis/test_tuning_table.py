"""The tuning report (`bench table --layout tuning`, `analysis.tuning`) on a small synthetic tuning store.

2 methods × 1 cell × 4 trials, planted so that the rule is visible: in each search one finished
trial has the best selected test accuracy but the worst validation score (never the tuned one);
`ce`'s trial 3 has the highest validation score of all but was stopped early by the scheduler
(never chosen, outside the spread); `balanced_softmax`'s trial 1 failed. Expected numbers are
computed here with numpy from the planted values, not by the code under test.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from analysis import tuning
from bench.grid.schema import EPOCH_COLUMNS, RUN_COLUMNS

#: the columns `bench tune` adds to runs.csv (the contract), after RUN_COLUMNS where the schema lacks them
TUNE_COLUMNS = ["val_fraction", "selected_acc", "selected_epoch", "selected_on", "selected_val", "tune_trial"]
COLUMNS = RUN_COLUMNS + [c for c in TUNE_COLUMNS if c not in RUN_COLUMNS]
EPOCHS = 5
SELECTED_EPOCH = 3
#: method -> trials: (trial, status, selected_val, selected_acc, hparams); trial 0 = the defaults
PLANTED = {
    "ce": [
        (0, "done", 60.0, 55.0, {"smoothing": 0.0}),
        (1, "done", 65.0, 58.0, {"smoothing": 0.1}),  # the best validation score among finished trials
        (2, "done", 50.0, 70.0, {"smoothing": 0.3}),  # best test accuracy, worst validation score
        (3, "stopped", 80.0, 75.0, {"smoothing": 0.2}),  # highest score of all, but stopped early
    ],
    "balanced_softmax": [
        (0, "done", 62.0, 57.0, {"tau": 1.0, "warmup": 5}),
        (1, "failed", None, None, {"tau": 2.0, "warmup": 5}),
        (2, "done", 66.0, 61.0, {"tau": 0.5, "warmup": 5}),  # the best validation score
        (3, "done", 59.0, 64.0, {"tau": 1.5, "warmup": 5}),  # best test accuracy, worst validation score
    ],
}
CELL = {"dataset": "cifar10", "imbalance": 100, "noise": "sym", "noise_rate": 0.4}
LR = {("ce", 1): 0.02, ("balanced_softmax", 2): 0.05}


def _run_id(method: str, trial: int) -> str:
    return f"{method[:4]}t{trial}"


def write_store(folder: Path, settings: bool = True, tune: bool = True, ordinary: bool = False) -> Path:
    """A tuning results folder: runs.csv (COLUMNS), epochs.csv, tuning.json; with
    `ordinary`, also a grid run of `ce` in the same cell (no `tune_trial`) with the highest scores of all."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, curves = [], []
    for method, planted in PLANTED.items():
        for trial, status, val, acc, hparams in planted:
            run_id = _run_id(method, trial)
            row = dict.fromkeys(COLUMNS, "")
            row.update(
                run_id=run_id, preset="quick", backbone="resnet32", method=method, **CELL, order="lt-noise",
                pad_mode="constant", normalisation="dataset", noise_sampling="independent", meta_per_class=10,
                data_seed=0, seed=0, epochs=EPOCHS, batch_size=128, status=status, colocated=1, speed="{}",
                meta_set_used=False, device="cpu", git_commit="0" * 40, finished_at="2026-12-03T00:00:00+00:00",
                hparams=json.dumps(hparams, sort_keys=True), config_key=f"{method[:4]}{trial}".ljust(12, "0"),
                val_fraction=0.1, selected_on="val_bal_acc", tune_trial=str(trial) if tune else "")
            if status == "failed":
                row.update(error="RuntimeError: out of memory")
            else:
                ran = EPOCHS if status == "done" else SELECTED_EPOCH + 1
                # a test curve whose maximum is not at the selected epoch: selected_acc is what counts
                curve = [acc - 10 + 2 * e for e in range(ran)]
                curve[SELECTED_EPOCH] = acc
                if ran > SELECTED_EPOCH + 1:
                    curve[-1] = acc + 3
                row.update(last_acc=curve[-1], best_acc=max(curve), best_epoch=int(np.argmax(curve)),
                           best_selected_on="test", last5_acc=float(np.mean(curve[-5:])), sec_per_iter=0.01,
                           sec_per_epoch=1.0, samples_per_sec=1000.0, sec_total=float(ran), peak_mem_mb=100.0,
                           selected_acc=acc, selected_epoch=SELECTED_EPOCH, selected_val=val)
                curves += [{"run_id": run_id, "epoch": e, "test_acc": a, "train_loss": 1.0 / (e + 1), "lr": 0.1,
                            "sec_per_iter": 0.01, "sec_epoch": 1.0} for e, a in enumerate(curve)]
            rows.append(row)
    if ordinary:
        rows.append({**rows[0], "run_id": "ce-grid", "tune_trial": "", "selected_val": 99.0, "selected_acc": 99.0,
                     "hparams": "{}", "config_key": "grid00000000"})
    pd.DataFrame(rows, columns=COLUMNS).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(curves, columns=EPOCH_COLUMNS).to_csv(folder / "epochs.csv", index=False)
    if settings:
        chosen = []
        for method, planted in PLANTED.items():
            trial, _, val, acc, hparams = _expected_choice(planted)
            chosen.append({"method": method, **CELL, "trial": trial, "run_id": _run_id(method, trial),
                           "hparams": hparams, "lr": LR[(method, trial)], "weight_decay": 5e-4,
                           "selected_val": val, "selected_acc": acc})
        (folder / "tuning.json").write_text(json.dumps({
            "preset": "quick", "search": "random", "scheduler": "asha", "trials": 4, "epochs": EPOCHS,
            "objective": "val_bal_acc", "seed": 0, "val_fraction": 0.1, "chosen": chosen}))
    return folder


def _expected_choice(planted):
    """The planted trial with the highest validation score among the finished ones, computed with numpy
    (ties: the lower trial number, which np.argmax keeps as it returns the first maximum)."""
    done = [t for t in planted if t[1] == "done"]
    return done[int(np.argmax([t[2] for t in done]))]


@pytest.fixture
def store(tmp_path, monkeypatch):
    folder = write_store(tmp_path / "tune-quick")
    return folder


def _report(folder: Path) -> tuning.TuningReport:
    return tuning.tuning_report(folder)[1]


def _row(report: tuning.TuningReport, method: str) -> pd.Series:
    rows = report.rows[report.rows["method"] == method]
    assert len(rows) == 1
    return rows.iloc[0]


# ------------------------------------------------------------------------------------ the numbers


@pytest.mark.parametrize("method", list(PLANTED))
def test_the_tuned_trial_has_the_best_validation_score_not_the_best_test_accuracy(store, method):
    planted = PLANTED[method]
    row = _row(_report(store), method)
    expected = _expected_choice(planted)
    best_test = max((t for t in planted if t[1] == "done"), key=lambda t: t[3])
    worst_val = min((t for t in planted if t[1] == "done"), key=lambda t: t[2])
    assert best_test is worst_val and best_test[0] != expected[0]  # the fixture plants the trap
    assert row["tuned_trial"] == expected[0] != best_test[0]
    assert row["tuned_run_id"] == _run_id(method, expected[0])
    assert (row["tuned_val"], row["tuned_acc"]) == (expected[2], expected[3])
    assert row["tuned_trial"] not in [t[0] for t in planted if t[1] != "done"]  # never a stopped/failed trial


@pytest.mark.parametrize("method", list(PLANTED))
def test_gain_budget_and_spread_match_an_independent_computation(store, method):
    planted = PLANTED[method]
    row = _row(_report(store), method)
    default, chosen = planted[0], _expected_choice(planted)
    done = [t for t in planted if t[1] == "done"]
    accs, vals = np.array([t[3] for t in done]), np.array([t[2] for t in done])
    assert (row["default_val"], row["default_acc"]) == (default[2], default[3])
    assert row["gain"] == pytest.approx(chosen[3] - default[3])
    assert [row["acc_min"], row["acc_median"], row["acc_max"]] == pytest.approx(
        [np.min(accs), np.median(accs), np.max(accs)])
    assert [row["val_min"], row["val_median"], row["val_max"]] == pytest.approx(
        [np.min(vals), np.median(vals), np.max(vals)])
    assert row["acc_n"] == row["val_n"] == len(done)
    statuses = [t[1] for t in planted]
    assert (row["trials_done"], row["trials_stopped"], row["trials_failed"]) == (
        statuses.count("done"), statuses.count("stopped"), statuses.count("failed"))
    assert (row["trials_planned"], row["epochs"], row["search"], row["scheduler"]) == (4, EPOCHS, "random", "asha")
    assert row["budget"].startswith(f"4 × {EPOCHS} ep, random/asha: {statuses.count('done')} done")


def test_changed_hyperparameters_are_those_that_differ_from_trial_0(store):
    report = _report(store)
    assert _row(report, "ce")["changed"] == "smoothing=0.1; lr=0.02, wd=0.0005"
    assert _row(report, "balanced_softmax")["changed"] == "tau=0.5; lr=0.05, wd=0.0005"  # warmup is unchanged


def test_without_tuning_json_the_budget_is_counted_from_the_runs(tmp_path, monkeypatch):
    folder = write_store(tmp_path / "r", settings=False)
    report = _report(folder)
    row = _row(report, "ce")
    assert (row["trials_planned"], row["epochs"], row["search"], row["scheduler"]) == (4, EPOCHS, "", "")
    assert row["tuned_trial"] == 1 and row["changed"] == "smoothing=0.1"
    assert "Budget counted from runs.csv (tuning.json is missing)" in report.caption


def test_ordinary_runs_in_the_folder_take_no_part(tmp_path, monkeypatch):
    folder = write_store(tmp_path / "mixed", ordinary=True)
    row = _row(_report(folder), "ce")
    assert row["tuned_trial"] == 1 and row["trials_done"] == 3 and row["acc_max"] == 70.0


def test_a_stale_tuning_json_choice_is_noted(store):
    settings = json.loads((store / "tuning.json").read_text())
    settings["chosen"][0]["trial"] = 2
    (store / "tuning.json").write_text(json.dumps(settings))
    report = _report(store)
    assert len(report.notes) == 1 and "records trial 2 as chosen for CE" in report.notes[0]
    assert _row(report, "ce")["tuned_trial"] == 1 and math.isnan(_row(report, "ce")["tuned_lr"])


def test_a_trial_named_as_an_ablation_variant_stays_in_its_search():
    """load_results names a run by a variant when its hparams hold the variant's overrides; a sampled
    trial may, and must stay in its method's search."""
    runs = pd.DataFrame({
        "preset": ["quick"] * 3, "method": ["dynamic_loss", "dynamic_loss-vector", "dynamic_loss"], **{
            k: [v] * 3 for k, v in CELL.items()}, "tune_trial": ["0", "1", "2"], "status": ["done"] * 3})
    assert set(tuning.tuning_runs(runs)["method"]) == {"dynamic_loss"}


# ------------------------------------------------------------------------------------ rendering and CLI


def test_markdown_has_the_caption_and_a_row_per_search(store):
    text = tuning.render(_report(store), "md")
    caption = text.splitlines()[0]
    assert "only the noisy-validation score" in caption and "never selected on" in caption
    assert "test accuracy at the epoch maximising the validation score" in caption
    assert "val_bal_acc (balanced accuracy) on a held-out 10% of the noisy training set" in caption
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| Method | Cell | Budget | Default val |")
    assert lines[1].startswith("| CE | cifar10 ρ=100 sym 0.4 | 4 × 5 ep, random/asha: 3 done, 1 stopped |")
    assert lines[2].startswith("| Balanced Softmax | cifar10 ρ=100 sym 0.4 | 4 × 5 ep, random/asha: 3 done, 1 failed")
    assert "| 1 | 65.00 | 58.00 | smoothing=0.1; lr=0.02, wd=0.0005 | +3.00 | 55.00 / 58.00 / 70.00 (n=3) |" in lines[1]
    assert "| +4.00 | 57.00 / 61.00 / 64.00 (n=3) | 59.00 / 62.00 / 66.00 (n=3) |" in lines[2]
    latex = tuning.render(_report(store), "latex")
    assert latex.startswith(r"\begin{table}") and r"cifar10 $\rho$=100 sym 0.4" in latex


def test_table_command_prints_the_report_and_writes_three_formats(store, capsys):
    code, out, err = run_cli(capsys, "table", "--layout", "tuning", "--results", str(store))
    assert code == 0, err
    assert out == (store / "tables" / "tuning.md").read_text()
    assert "never selected on" in out and "| CE |" in out and "| Balanced Softmax |" in out
    assert sorted(p.name for p in (store / "tables").iterdir()) == ["tuning.csv", "tuning.md", "tuning.tex"]
    frame = pd.read_csv(store / "tables" / "tuning.csv")
    assert dict(zip(frame["method"], frame["tuned_trial"])) == {"ce": 1, "balanced_softmax": 2}
    code, out, _ = run_cli(capsys, "table", "--layout", "tuning", "--results", str(store), "--format", "csv")
    assert code == 0 and out == (store / "tables" / "tuning.csv").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--metric", "best"], "--metric does not apply to --layout tuning"),
    (["--metric", "nope"], "--metric does not apply to --layout tuning"),
    (["--reference"], "--reference does not apply to --layout tuning"),
    (["--format", "html"], "unknown --format 'html'"),
])
def test_table_command_refuses_what_does_not_apply_in_one_line(store, capsys, argv, message):
    code, _, err = run_cli(capsys, "table", "--layout", "tuning", "--results", str(store), *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_a_folder_without_tuning_trials_is_refused_in_one_line(tmp_path, capsys):
    folder = write_store(tmp_path / "grid", settings=False, tune=False)
    runs = pd.read_csv(folder / "runs.csv")
    # ordinary runs: one configuration per method and cell, finished
    runs = runs[runs["run_id"].str.endswith("t0")].assign(tune_trial="")
    runs.to_csv(folder / "runs.csv", index=False)
    code, _, err = run_cli(capsys, "table", "--layout", "tuning", "--results", str(folder))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "holds no tuning trials; run `python -m bench tune --preset quick ...` first" in lines[0]


def test_a_misspelt_layout_suggests_tuning(store, capsys):
    code, _, err = run_cli(capsys, "table", "--layout", "tunign", "--results", str(store))
    assert code == 2 and "did you mean 'tuning'" in err
