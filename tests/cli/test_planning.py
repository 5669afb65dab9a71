"""Bad hyperparameter values are refused when a run is planned, before any run gets an id:
`bench validate`, `run grid` (with or without --dry-run) and `run one` stop with one line and
exit code 2, and nothing is written."""
import dataclasses

import pytest

from bench.cli import main
from bench.grid.presets import PRESETS


@pytest.fixture
def bad_preset(monkeypatch):
    monkeypatch.setattr(PRESETS, "_entries", dict(PRESETS._entries))
    monkeypatch.setattr(PRESETS, "_descriptions", dict(PRESETS._descriptions))
    quick = PRESETS.get("quick")
    PRESETS.add("bad", dataclasses.replace(quick, method_hparams={"mwnet": {"bn": "foo"}}))
    return "bad"


def one_line_exit_2(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bn must be one of 'scratch', 'real', got 'foo'" in err[0], err
    assert "Traceback" not in err[0]


def test_run_one_refuses_a_bad_choice(capsys, tmp_path):
    out = tmp_path / "one"
    one_line_exit_2(capsys, ["run", "one", "--method", "mwnet", "--dataset", "digits", "--hp", "bn=foo",
                             "--out", str(out)])
    assert not out.exists()


@pytest.mark.parametrize("argv", [["validate", "--preset", "bad"], ["run", "grid", "--preset", "bad", "--dry-run"],
                                  ["run", "grid", "--preset", "bad", "--launcher", "local"]])
def test_presets_with_a_bad_choice_are_refused(bad_preset, capsys, tmp_path, argv):
    out = tmp_path / "grid"
    one_line_exit_2(capsys, [*argv, "--out", str(out)] if argv[0] == "run" else argv)
    assert not out.exists()


# --- runs whose epochs never reach a method's main phase ------------------------------------------
def refused(capsys, argv, *needles):
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    for needle in needles:
        assert needle in err[0], err[0]
    return captured.out


@pytest.mark.parametrize("method,key,value", [("dynamic_loss", "warmup_epochs", 5), ("fsr", "meta_start_epoch", 20),
                                              ("dividemix", "warmup_epochs", 10)])
def test_run_one_refuses_a_run_that_never_leaves_warm_up(capsys, tmp_path, method, key, value):
    """digits' recipe has 3 epochs: the defaults' warm-ups would make each of these CE."""
    out = tmp_path / "one"
    refused(capsys, ["run", "one", "--method", method, "--dataset", "digits", "--out", str(out)],
            f"method '{method}': {key}={value} but the run has 3 epoch(s)", "--short-run",
            f"at least {value + 1} --epochs")
    assert not out.exists()
    refused(capsys, ["run", "one", "--method", method, "--dataset", "digits", "--hp", f"{key}=3", "--out", str(out)],
            f"{key}=3 but the run has 3 epoch(s)")


@pytest.mark.parametrize("argv", [["run", "grid", "--preset", "fmnist-n-lt", "--epochs", "3", "--dry-run"],
                                  ["run", "grid", "--preset", "fmnist-n-lt", "--epochs", "3", "--launcher", "local"]])
def test_grids_refuse_epochs_that_never_leave_warm_up(capsys, tmp_path, argv):
    out = tmp_path / "grid"
    refused(capsys, [*argv, "--out", str(out)], "but the run has 3 epoch(s)")
    assert not out.exists()


def test_validate_refuses_a_preset_whose_recipe_never_leaves_warm_up(bad_preset, capsys, monkeypatch):
    quick = PRESETS.get("quick")
    PRESETS.add("no-short", dataclasses.replace(quick, short_run=False))
    refused(capsys, ["validate", "--preset", "no-short"], "but the run has 3 epoch(s)")


def test_short_run_applies_prints_and_records_the_overrides(capsys, tmp_path):
    out = tmp_path / "grid"
    assert main(["run", "grid", "--preset", "fmnist-n-lt", "--epochs", "3", "--short-run", "--dry-run",
                 "--methods", "ce,dynamic_loss,fsr", "--seeds", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "short run: dynamic_loss warmup_epochs=1" in printed and "short run: fsr meta_start_epoch=1" in printed
    assert "short run: ce" not in printed  # CE has nothing to shorten
    assert "warmup_epochs=1" in printed.split("short run:")[-1]  # and the plan lists the applied value
    assert not out.exists()


def test_plan_one_short_run_keeps_the_users_own_values():
    from bench.grid.run import OneRequest, plan_one
    from noisytail_datasets import DataSpec

    cfg = plan_one(OneRequest(method="dividemix", data=DataSpec(dataset="digits"), short_run=True))
    assert cfg.hparams["warmup_epochs"] == 1
    cfg = plan_one(OneRequest(method="dividemix", data=DataSpec(dataset="digits"), short_run=True,
                              hparams={"warmup_epochs": 2}))
    assert cfg.hparams["warmup_epochs"] == 2


def test_the_engine_refuses_too_and_records_why():
    """A config built by hand (not planned) fails as a run with the reason, never trains as CE."""
    from helpers import digits_run

    from bench.grid.presets import resolve_hparams
    from bench.train.engine import run_trial

    cfg = digits_run("dynamic_loss", epochs=2).with_(hparams=resolve_hparams("dynamic_loss"))
    rec = run_trial(cfg)
    assert rec["status"] == "failed" and "warmup_epochs=5 but the run has 2 epoch(s)" in rec["error"]
    assert rec["epochs"] == []
