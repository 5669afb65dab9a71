"""Checkpoints in a shared results folder are read without running anything they name.

A file planted where a run's checkpoint goes (or a checkpoint someone rewrote) that names a
callable or a foreign class is refused before any of it runs; the run records why, in one line,
and trains from epoch 0 as if there had been no checkpoint.
"""
import os
import pickle
import shlex

import pytest
import torch
from helpers import digits_run

from bench.train import checkpoint
from bench.train.checkpoint import CHECKPOINT_GLOBALS, CheckpointRefused, load_checkpoint, save_checkpoint
from bench.train.engine import TrialOptions, run_trial

TIMING = {"sec_per_iter", "sec_epoch"}
EPOCHS, KILLED_AT = 3, 1


class RunsACommand:
    """Unpickled by a full unpickler, this calls `os.system(command)`."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class Foreign:
    """A class no checkpoint holds: a full unpickler would import and build it."""

    def __init__(self) -> None:
        self.note = "not a checkpoint type"


def _payloads(marker):
    """(name, object, the global the refusal must name)"""
    system = f"{os.system.__module__}.{os.system.__name__}"  # posix.system on Linux
    return {
        "callable": (RunsACommand(f"touch {shlex.quote(str(marker))}"), system),
        "class": (Foreign(), f"{Foreign.__module__}.Foreign"),
    }


@pytest.mark.parametrize("payload", ["callable", "class"])
def test_a_checkpoint_naming_a_foreign_global_is_refused_unrun(payload, tmp_path):
    marker = tmp_path / "ran"
    obj, name = _payloads(marker)[payload]
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"run_id": "r", "epoch": 0, "method": {"model": obj}})
    with pytest.raises(CheckpointRefused) as info:
        load_checkpoint(path)
    assert not marker.exists()
    message = str(info.value)
    assert message.startswith("refused: it holds objects a checkpoint never contains (")
    assert name in message and "\n" not in message


def test_the_allow_list_holds_only_while_a_checkpoint_loads(monkeypatch, tmp_path):
    """A type on CHECKPOINT_GLOBALS loads from a checkpoint; it is not left allowed for the process."""
    monkeypatch.setattr(checkpoint, "CHECKPOINT_GLOBALS", (Foreign,))
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"run_id": "r", "extra": Foreign()})
    assert isinstance(load_checkpoint(path)["extra"], Foreign)
    assert Foreign not in torch.serialization.get_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def _values(record):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in record["epochs"]]


@pytest.fixture(scope="module")
def mwnet_runs(tmp_path_factory):
    """MW-Net (networks, two optimisers and a meta sampler in its state): the uninterrupted run,
    and the checkpoint of one killed after epoch KILLED_AT."""
    cfg = digits_run("mwnet", epochs=EPOCHS)
    straight = run_trial(cfg, TrialOptions(device="cpu"))
    assert straight["status"] == "done", straight["error"]

    def kill_after_epoch(row):
        if row["epoch"] == KILLED_AT:
            raise RuntimeError("simulated kill")

    ckpt_dir = tmp_path_factory.mktemp("killed")
    killed = run_trial(cfg, TrialOptions(device="cpu", checkpoint_dir=ckpt_dir, checkpoint_every=1),
                       report=kill_after_epoch)
    assert "simulated kill" in killed["error"]
    return cfg, straight, (ckpt_dir / f"{cfg.run_id}.pt").read_bytes()


def test_a_genuine_checkpoint_names_nothing_outside_the_allow_list(mwnet_runs, tmp_path):
    path = tmp_path / "run.pt"
    path.write_bytes(mwnet_runs[2])
    with torch.serialization.safe_globals(list(CHECKPOINT_GLOBALS)):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []


@pytest.mark.parametrize("payload", ["callable", "class"])
def test_a_run_whose_checkpoint_is_refused_starts_over_and_says_so(payload, mwnet_runs, tmp_path):
    cfg, straight, genuine = mwnet_runs
    path = tmp_path / f"{cfg.run_id}.pt"
    path.write_bytes(genuine)
    marker = tmp_path / "ran"
    obj, name = _payloads(marker)[payload]
    state = load_checkpoint(path)
    state["method"]["meta"] = obj  # the rest of the file is the real checkpoint, run id included
    torch.save(state, path)

    resumed = run_trial(cfg, TrialOptions(device="cpu", checkpoint_dir=tmp_path, checkpoint_every=1))
    assert not marker.exists()
    assert resumed["status"] == "done", resumed["error"]
    assert "resumed_from_epoch" not in resumed
    error = resumed["checkpoint_error"]
    assert error.startswith("checkpoint not loadable, started over: refused: it holds objects a checkpoint never")
    assert name in error and "\n" not in error
    assert _values(resumed) == _values(straight)
    # the run's own checkpoints replaced the planted file (the store deletes the last one once the record is stored)
    assert load_checkpoint(path)["epoch"] >= 0 and not marker.exists()
