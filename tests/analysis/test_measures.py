"""Measures other than top-1 (`Results.scores(metric, measure)`), ablation variants and backbone
sweeps in a results folder, and the published-number lookup by measure and by NaN keys."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic_layout import write_layout_results  # noqa: E402

from analysis.results import Cell, load_results, measure_column, measure_values  # noqa: E402
from bench.core.errors import UsageError  # noqa: E402

WEBVISION = Cell("mini-webvision", 1.0, "none", 0.0)


def _tables(rows: list[tuple[str, list[float], list[float]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A runs table and an epochs table: per run (run_id, top-1 curve, top-5 curve)."""
    runs, epochs = [], []
    for run_id, top1, top5 in rows:
        best = max(range(len(top1)), key=top1.__getitem__)
        runs.append({"run_id": run_id, "last_acc": top1[-1], "best_acc": top1[best], "best_epoch": best,
                     "last5_acc": sum(top1[-5:]) / len(top1[-5:])})
        epochs += [{"run_id": run_id, "epoch": e, "test_acc": a, "test_top5": b}
                   for e, (a, b) in enumerate(zip(top1, top5))]
    return pd.DataFrame(runs), pd.DataFrame(epochs)


def test_a_measure_is_read_at_the_last_epoch_at_the_top1_best_epoch_or_over_the_last_five():
    runs, epochs = _tables([("a", [50, 70, 60, 65, 62, 61], [80, 81, 95, 82, 83, 84]),
                            ("b", [10, 20, 30], [40, 50, 45])])
    epochs = epochs.sample(frac=1.0, random_state=0)  # any row order
    assert measure_values(runs, epochs, "last", "top5").tolist() == [84, 45]
    assert measure_values(runs, epochs, "best", "top5").tolist() == [81, 45]  # at top-1's epoch, not top-5's 95
    assert measure_values(runs, epochs, "last5", "top5").tolist() == pytest.approx([(81 + 95 + 82 + 83 + 84) / 5,
                                                                                    (40 + 50 + 45) / 3])
    for measure in ("", "top1"):  # top-1 from the runs table itself
        assert measure_values(runs, epochs, "best", measure).tolist() == [70, 30]


def test_a_measure_the_runs_did_not_record_is_nan_and_unknown_names_are_usage_errors():
    runs, epochs = _tables([("a", [50, 70], [80, 81])])
    assert math.isnan(measure_values(runs, epochs, "last", "imagenet_top1").iloc[0])
    epochs.loc[epochs.epoch == 1, "test_top5"] = float("nan")
    assert math.isnan(measure_values(runs, epochs, "last", "top5").iloc[0])  # the final epoch's, not an earlier one
    with pytest.raises(UsageError, match="unknown measure 'top3'"):
        measure_column("top3")
    with pytest.raises(UsageError, match="unknown metric"):
        measure_values(runs, epochs, "median", "top5")


def test_scores_and_the_cell_matrix_take_a_measure(tmp_path):
    folder = write_layout_results(tmp_path / "r", "dl-table4", {"ce": 2, "dynamic_loss": 2})
    results = load_results(folder)
    epochs = pd.read_csv(folder / "epochs.csv", dtype={"run_id": str})
    last = epochs.sort_values("epoch").groupby("run_id").tail(1).set_index("run_id")
    scores = results.scores("last", "imagenet_top5").set_index(results.done["run_id"].to_numpy())
    assert scores["value"].to_dict() == last["imagenet_top5"].to_dict()
    matrix = results.cell_matrix("best", "top5")
    runs = results.done.set_index("run_id")
    at_best = {r: epochs[(epochs.run_id == r) & (epochs.epoch == runs.best_epoch[r])].test_top5.iloc[0]
               for r in runs.index}
    ce = [v for r, v in at_best.items() if runs.method[r] == "ce"]
    assert matrix.loc[WEBVISION, "ce"] == pytest.approx(sum(ce) / len(ce))
    assert results.scores("last").value.tolist() == results.done.last_acc.tolist()  # top-1 as before


def test_a_column_without_the_measure_says_so_instead_of_a_number(tmp_path):
    from analysis.tables import build_table, to_markdown

    folder = write_layout_results(tmp_path / "r", "dl-table4", {"ce": 2})
    epochs = pd.read_csv(folder / "epochs.csv")
    epochs.drop(columns=["imagenet_acc"]).to_csv(folder / "epochs.csv", index=False)
    text = to_markdown(build_table(load_results(folder), "dl-table4"))
    assert "the runs recorded no ImageNet top-1 accuracy (epochs column 'imagenet_acc')" in text
    assert "| CE | Last | 32.38 ± 0.53 | 50.38 ± 0.53 | – ⚠1 | 46.38 ± 0.53 |" in text


def test_variant_runs_are_named_by_their_variant_and_plain_runs_keep_their_method(tmp_path):
    folder = write_layout_results(tmp_path / "r", "famus-table3", {"mwnet": 2, "famus": 2, "famus-no-lr": 2})
    results = load_results(folder)
    assert results.methods() == ["mwnet", "famus", "famus-no-lr"]
    runs = pd.read_csv(folder / "runs.csv")
    assert set(runs.method) == {"mwnet", "famus"}  # the store keeps the registered method
    named = results.runs.set_index("run_id").method
    for run in runs.itertuples():
        is_variant = '"lambda_r": 0.0' in run.hparams
        assert named[str(run.run_id)] == ("famus-no-lr" if is_variant else run.method)


def test_a_backbone_sweep_loads_but_pooling_scores_refuse_it(tmp_path):
    folder = write_layout_results(tmp_path / "r", "dl-table8", {"ce": 2})
    results = load_results(folder)
    assert results.runs.backbone.nunique() == 4
    with pytest.raises(UsageError, match="several backbones"):
        results.scores("last")
    with pytest.raises(UsageError, match="several backbones"):
        results.cell_matrix("last")
    from analysis.plots import time_accuracy_data

    with pytest.raises(UsageError, match="several backbones"):  # a plot point per method, never pooled
        time_accuracy_data(results, "last", results.cells()[0])
    runs = pd.read_csv(folder / "runs.csv")
    runs.assign(preset="quick").to_csv(folder / "runs.csv", index=False)  # not a sweep: mixed backbones refused
    with pytest.raises(UsageError, match="ran with different backbone"):
        load_results(folder)


def test_a_layout_without_backbone_columns_does_not_pool_a_sweep(tmp_path):
    from analysis.tables import build_table, to_frame

    results = load_results(write_layout_results(tmp_path / "r", "dl-table8", {"ce": 2}))
    frame = to_frame(build_table(results, "grid"))
    cell = frame[frame.kind == "cell"]
    assert cell["mean"].isna().all() and "several backbones" in cell.notes.iloc[0]


def test_lookup_filters_on_the_measure_and_matches_nan_keys():
    from analysis.reference import lookup

    key = ("mini-webvision", 1.0, "none", 0.0)
    found = {m: lookup("fsr", 5, ("FSR",), key, "last", "resnet50", measure=m).value
             for m in ("", "top1", "top5", "imagenet_top1", "imagenet_top5")}
    assert found == {"": 74.9, "top1": 74.9, "top5": 88.2, "imagenet_top1": 72.3, "imagenet_top5": 87.2}
    hit = lookup("fsr", 5, ("FSR",), key, "last", "resnet50", measure="imagenet_top5")
    assert hit.measure == "imagenet_top5" and hit.metric == "acc"
    assert lookup("fsr", 5, ("FSR",), key, "last", "resnet50", measure="many") is None
    avg = ("cifar10", math.nan, "lt-prior", math.nan)
    assert lookup("dynamic_loss", 9, ("(b) Naïve",), avg, "best").value == 79.58
    assert lookup("dynamic_loss", 9, ("(b) Naïve",), ("cifar10", 10.0, "lt-prior", 0.1), "best") is None
    # an ordinary cell still finds its top-1 row whose measure column is empty
    assert lookup("dynamic_loss", 6, ("Dynamic Loss",), ("animal10n", 1.0, "none", 0.0), "last").value == 86.54


def test_columns_and_layouts_refuse_what_they_cannot_show():
    from bench.grid.layout import AverageRows, Column, Layout

    with pytest.raises(ValueError, match="unknown measure 'top3'"):
        Column(WEBVISION, "WebVision", "top-3", measure="top3")
    rows = AverageRows(9, ("cifar10", math.nan, "lt-prior", math.nan), {"ce": ("(c) Cross Entropy",)})
    with pytest.raises(ValueError, match="average_rows needs avg='all'"):
        Layout("x", "x", (Column(WEBVISION, "g", "l"),), average_rows=rows)
