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
