"""Exact resume for every registered method: a run killed after an epoch and resumed from its
checkpoint gives the same records, to the bit, as the run that was never interrupted.

Each run is short (digits, MLP, the method's short-run overrides: its main phase starts at
epoch 1), so the resumed epochs are main-phase epochs. A small meta batch puts the meta
samplers mid-cycle at every epoch boundary, so a sampler position that is not saved shows.
"""
import pytest
import torch
from helpers import digits_run

from bench.train.engine import TrialOptions, run_trial
from methods import METHODS

#: columns that measure time, not what was computed
TIMING = {"sec_per_iter", "sec_epoch"}
EPOCHS, KILLED_AT = 3, 2


def _run(method: str, device: str, **kwargs):
    cfg = digits_run(method, epochs=EPOCHS)
    cls = METHODS.get(method)
    small_meta = {"meta_batch_size": 40} if "meta_batch_size" in cls.defaults else {}
    cfg = cfg.with_(hparams=cls.resolve_hparams(cls.short_run, small_meta))
    return cfg, run_trial(cfg, TrialOptions(device=device, **kwargs.pop("options", {})), **kwargs)


def _values(record):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in record["epochs"]]


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", METHODS.names())
def test_killed_and_resumed_run_equals_the_uninterrupted_run(method, device, tmp_path):
    _, straight = _run(method, device)
    assert straight["status"] == "done", straight["error"]

    def kill_after_epoch(row):
        if row["epoch"] == KILLED_AT:
            raise RuntimeError("simulated kill")

    options = {"checkpoint_dir": tmp_path, "checkpoint_every": 1}
    cfg, killed = _run(method, device, options=options, report=kill_after_epoch)
    assert killed["status"] == "failed" and "simulated kill" in killed["error"]
    _, resumed = _run(method, device, options=options)
    assert resumed["status"] == "done", resumed["error"]
    assert resumed["resumed_from_epoch"] == KILLED_AT
    assert _values(resumed) == _values(straight)
    assert (tmp_path / f"{cfg.run_id}.pt").exists()  # kept: the store deletes it once the record is written


def test_a_checkpoint_the_method_cannot_load_starts_the_run_over(tmp_path):
    """E.g. one written before a method saved its meta sampler: the run starts over and says so,
    and its numbers are the uninterrupted run's."""
    _, straight = _run("mwnet", "cpu")

    def kill_after_epoch(row):
        if row["epoch"] == KILLED_AT:
            raise RuntimeError("simulated kill")

    options = {"checkpoint_dir": tmp_path, "checkpoint_every": 1}
    cfg, _ = _run("mwnet", "cpu", options=options, report=kill_after_epoch)
    path = tmp_path / f"{cfg.run_id}.pt"
    state = torch.load(path, weights_only=False)
    del state["method"]["meta"]
    torch.save(state, path)
    _, resumed = _run("mwnet", "cpu", options=options)
    assert resumed["status"] == "done" and "resumed_from_epoch" not in resumed
    assert "started over" in resumed["checkpoint_error"]
    assert _values(resumed) == _values(straight)
