"""Loading a results folder for analysis: clean cells, seed pairing, failures named clearly."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.results import Cell, load_results
from analysis.style import display_name, method_order, method_palette
from bench.core.errors import UsageError

DATA = Path(__file__).parent / "data" / "synthetic"


def test_analysis_lists_methods_in_the_registry_order_with_a_name_and_colour_for_each():
    from methods import METHODS

    names = METHODS.names()
    assert method_order(reversed(names)) == names
    assert [METHODS.get(m).order for m in names] == sorted(METHODS.get(m).order for m in names)
    assert all(display_name(m) == METHODS.get(m).display_name for m in names)  # each declares its own
    assert len({display_name(m) for m in names}) == len(names)
    palette = method_palette(names)
    assert len(set(palette.values())) == len(names)
    assert method_order(["zeta", "dal", "ce", "alpha"]) == ["ce", "dal", "alpha", "zeta"]


def test_clean_cells_are_named_none_whatever_the_noise_model(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(DATA, folder)
    runs = pd.read_csv(folder / "runs.csv")
    runs.loc[runs.noise_rate == 0.1, "noise_rate"] = 0.0
    runs.to_csv(folder / "runs.csv", index=False)
    cells = load_results(folder).cells()
    assert Cell("cifar10", 10.0, "none", 0.0) in cells and Cell("cifar10", 10.0, "lt-prior", 0.3) in cells


def test_scores_hold_finished_runs_only_and_the_matrix_averages_seeds():
    results = load_results(DATA)
    scores = results.scores("last")
    assert len(scores) == (results.runs.status == "done").sum()
    matrix = results.cell_matrix("last")
    cell = Cell("cifar10", 100.0, "lt-prior", 0.1)
    assert matrix.loc[cell, "ce"] == pytest.approx(62.0)
    assert pd.isna(matrix.loc[cell, "dynamic_loss"])
    assert list(matrix.columns) == ["ce", "balanced_softmax", "dividemix", "dynamic_loss"]


def test_tables_are_rebuilt_from_run_records_when_the_csv_is_gone(tmp_path):
    from bench.grid.store import ResultsStore

    record = {"run_id": "abc", "status": "done", "config": {
        "backbone": "mlp", "method": "ce", "seed": 0, "epochs": 1, "batch_size": 8, "hparams": {},
        "data": {"dataset": "digits", "imbalance": 1, "noise": "sym", "noise_rate": 0.2, "order": "lt-noise",
                 "meta_per_class": 0, "data_seed": 0}},
        "summary": {"last_acc": 50.0, "best_acc": 55.0, "last5_acc": 52.0},
        "epochs": [{"epoch": 0, "test_acc": 50.0}]}
    ResultsStore(tmp_path).write(record)
    (tmp_path / "runs.csv").unlink()
    results = load_results(tmp_path)
    assert results.runs["last_acc"].tolist() == [50.0] and len(results.epochs) == 1


def test_unreadable_or_foreign_tables_fail_with_the_file_named(tmp_path):
    (tmp_path / "runs.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="lacks the columns"):
        load_results(tmp_path)
    (tmp_path / "runs.csv").write_bytes(b"\x00\xff\"unterminated\n")
    with pytest.raises(UsageError):
        load_results(tmp_path)
