"""ASHA under `bench tune`: one scheduler per search, so methods never compete for a rung."""
from types import SimpleNamespace

from bench.grid.schedulers import PerSearchASHA, search_of


def _trial(name, method):
    data = {"dataset": "digits", "imbalance": 10.0, "noise": "sym", "noise_rate": 0.4}
    return SimpleNamespace(trial_id=name, config={"run": {"method": method, "data": data}})


def test_a_method_with_lower_scores_is_judged_only_against_its_own_trials():
    scheduler = PerSearchASHA(grace_period=1, reduction_factor=2, max_epochs=8)
    a1, a2, b1, b2 = _trial("a1", "ce"), _trial("a2", "ce"), _trial("b1", "dal"), _trial("b2", "dal")
    for trial in (a1, a2, b1, b2):
        scheduler.on_trial_add(None, trial)
    assert search_of(a1) != search_of(b1) and len(scheduler.children) == 2

    def report(trial, score):
        return scheduler.on_trial_result(None, trial, {"training_iteration": 1, "val_score": score})

    assert report(a1, 90.0) == "CONTINUE" and report(a2, 80.0) == "STOP"  # ce's own rung: 80 < 90
    # dal scores far below ce: alone in its search it goes on, then its own worse trial stops
    assert report(b1, 10.0) == "CONTINUE" and report(b2, 5.0) == "STOP"


def test_no_rung_at_the_last_epoch_so_a_finished_trial_keeps_its_record():
    scheduler = PerSearchASHA(grace_period=1, reduction_factor=2, max_epochs=4)
    good, late = _trial("g", "ce"), _trial("l", "ce")
    for trial in (good, late):
        scheduler.on_trial_add(None, trial)

    def report(trial, iteration, score):
        return scheduler.on_trial_result(None, trial, {"training_iteration": iteration, "val_score": score})

    assert all(report(good, epoch, 90.0) == "CONTINUE" for epoch in (1, 2, 3, 4))
    assert report(late, 1, 95.0) == report(late, 2, 95.0) == "CONTINUE"
    # it falls behind at its last epochs (3, 4) and its record (5): no rung judges it there, it ends with its record
    assert [report(late, epoch, 10.0) for epoch in (3, 4, 5)] == ["CONTINUE"] * 3


def test_the_scheduler_pickles_as_tune_saves_it():
    import pickle

    from ray import cloudpickle

    scheduler = PerSearchASHA(grace_period=1, reduction_factor=2, max_epochs=4)
    scheduler.on_trial_add(None, _trial("a", "ce"))
    for dumps in (pickle.dumps, cloudpickle.dumps):
        again = pickle.loads(dumps(scheduler))
        assert type(again) is PerSearchASHA and list(again.children) == list(scheduler.children)
