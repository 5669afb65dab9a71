"""The selection rule: the noisy-validation score only, never a test accuracy."""
import numpy as np
import pandas as pd

from bench.tune.select import chosen_trials, trials

CELL = {"preset": "quick", "dataset": "digits", "imbalance": 10.0, "noise": "sym", "noise_rate": 0.4}


def _runs(rows):
    return pd.DataFrame([{**CELL, "run_id": f"r{i}", **row} for i, row in enumerate(rows)])


def test_the_trial_with_the_best_test_but_the_worst_validation_is_not_chosen():
    # trial: (status, validation score, selected test accuracy, last test accuracy)
    planted = {0: ("done", 40.0, 50.0, 50.0), 1: ("done", 20.0, 90.0, 95.0),  # best test, worst validation
               2: ("done", 45.0, 55.0, 54.0), 3: ("stopped", 60.0, 70.0, 70.0),  # stopped: never chosen
               4: ("failed", float("nan"), float("nan"), float("nan"))}
    rows = [{"method": m, "tune_trial": str(t), "status": s, "selected_val": v + off, "selected_acc": a,
             "last_acc": last}
            for off, m in ((0.0, "ce"), (1.0, "dal")) for t, (s, v, a, last) in planted.items()]
    rows.append({"method": "ce", "tune_trial": np.nan, "status": "done", "selected_val": 99.0, "selected_acc": 99.0,
                 "last_acc": 99.0})  # an ordinary run in the folder takes no part
    chosen = chosen_trials(_runs(rows)).set_index("method")
    # independently: argmax of the validation score over the finished trials
    done = [t for t, p in planted.items() if p[0] == "done"]
    expected = done[int(np.argmax([planted[t][1] for t in done]))]
    assert chosen.loc["ce", "trial"] == chosen.loc["dal", "trial"] == expected == 2
    assert len(trials(_runs(rows))) == 10


def test_a_tie_keeps_the_lower_trial_so_the_defaults_win_it():
    rows = [{"method": "ce", "tune_trial": str(t), "status": "done", "selected_val": 50.0, "selected_acc": 10.0 * t}
            for t in (2, 0, 1)]
    assert chosen_trials(_runs(rows))["trial"].tolist() == [0]


def test_searches_without_a_finished_trial_are_left_out():
    rows = [{"method": "ce", "tune_trial": "0", "status": "failed", "selected_val": np.nan, "selected_acc": np.nan}]
    assert chosen_trials(_runs(rows)).empty
