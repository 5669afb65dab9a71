"""The analysis commands end to end: on a real (small) grid they all succeed; on bad input
they fail with one line and exit code 2."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main

COMMANDS = ("table", "stats", "plots")


@pytest.mark.slow
def test_table_stats_and_plots_on_a_real_grid(tmp_path, capsys):
    out = tmp_path / "quick"
    assert main(["run", "grid", "--preset", "quick", "--launcher", "local", "--methods", "ce,balanced_softmax,dal",
                 "--seeds", "0,1,2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["table", "--results", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| Balanced Softmax | Last |" in table and "n = 3 seeds per cell" in table
    assert main(["stats", "--results", str(out)]) == 0
    report = capsys.readouterr().out
    assert "paired t" in report and "N = 4 complete cells, k = 3 methods" in report
    assert main(["plots", "--results", str(out)]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert len(written) >= 6 and all(p.stat().st_size > 5000 for p in written)
    for folder in ("tables", "stats/last", "plots"):
        assert any((out / folder).iterdir())


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_and_empty_results_fail_cleanly(command, tmp_path, capsys):
    assert main([command, "--results", str(tmp_path / "nope")]) == 2
    assert main([command, "--results", str(tmp_path)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "does not exist" in errors[0] and "holds no runs" in errors[1]


DATA = Path(__file__).parent / "data" / "synthetic"


@pytest.mark.parametrize("argv, message", [
    (["stats", "--reference-method", "gdw"], "reference method 'gdw'"),
    (["stats", "--alpha", "1.5"], "alpha"),
    (["plots", "--format", "svg"], "svg"),
    (["plots", "--cell", "cifar10:10"], "malformed cell"),
])
def test_bad_options_fail_cleanly(argv, message, tmp_path, capsys):
    import shutil

    shutil.copytree(DATA, tmp_path / "r")
    try:  # a value argparse refuses exits 2 through SystemExit, a later check returns 2
        rc = main([argv[0], "--results", str(tmp_path / "r"), *argv[1:]])
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
