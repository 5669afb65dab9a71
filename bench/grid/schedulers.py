"""Ray Tune schedulers of `bench tune` (imported only when one is used: it imports Ray).

`PerSearchASHA` keeps one ASHA per search, i.e. per method and cell (`search_of`): one ASHA over every
trial of a launch would rank methods against one another and stop the ones whose validation scores run
lower, whatever their own hyperparameters. It is a module-level class so that Tune can pickle it by
reference with the experiment state.
"""
from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler


def search_of(trial: Any) -> tuple:
    """The search a trial belongs to: its method on its cell (trials of other methods never compete)."""
    run = trial.config["run"]
    data = run["data"]
    return (run["method"], data["dataset"], data["imbalance"], data["noise"], data["noise_rate"])


class PerSearchASHA(FIFOScheduler):
    """ASHA on the per-epoch "val_score" (higher is better), one instance per search. Rungs at
    `grace_period` epochs, then ×`reduction_factor`, all before the last epoch (`max_epochs`): a trial
    judged at its last epoch would lose its record for nothing, and none is stopped for finishing."""

    def __init__(self, grace_period: int, reduction_factor: int, max_epochs: int) -> None:
        super().__init__()
        self.grace_period, self.reduction_factor, self.max_epochs = grace_period, reduction_factor, max_epochs
        self.children: dict[tuple, ASHAScheduler] = {}

    def child(self, trial: Any) -> ASHAScheduler:
        key = search_of(trial)
        if key not in self.children:
            # one report per epoch, then the record: max_t = the epoch before the last
            self.children[key] = ASHAScheduler(
                time_attr="training_iteration", metric="val_score", mode="max", max_t=self.max_epochs - 1,
                grace_period=self.grace_period, reduction_factor=self.reduction_factor, stop_last_trials=False)
        return self.children[key]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.child(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        return self.child(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.child(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.child(trial).on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.child(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return f"one ASHA per search ({len(self.children)} searches)"
