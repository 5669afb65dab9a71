import pandas as pd
from helpers import digits_run

from bench.grid.launchers import LaunchOptions, launch_local
from bench.grid.store import ResultsStore


def test_a_failed_run_is_recorded_and_the_grid_goes_on(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    good, bad = digits_run("ce"), digits_run("ce", lr=1e12, epochs=3)
    failed = launch_local([bad, good], store, LaunchOptions())
    assert failed == 1
    runs = pd.read_csv(tmp_path / "runs.csv").set_index("run_id")
    assert runs.loc[bad.run_id, "status"] == "failed" and "diverging" in runs.loc[bad.run_id, "error"]
    assert runs.loc[good.run_id, "status"] == "done"
    assert store.completed_ids() == {good.run_id}
    out = capsys.readouterr().out
    assert "[1/2]" in out and "FAILED" in out and "[2/2]" in out
