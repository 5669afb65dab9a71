"""Validation-based model selection against independent computations: the selected epoch (highest validation
score, ties to the later epoch, missing / NaN skipped), the summary's selected accuracy (the test accuracy at
that epoch, not the best one), the selection metric's rule, the class-balanced validation accuracy (mean of the
per-class accuracies over the classes present), and a short digits run end to end."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import FixedLogits, digits_run
from torch import nn

from bench.train.engine import EvalSets, _score, evaluate, run_trial, selected_epoch, selection_metric, summarize
from methods.base import TensorImages
from noisytail_datasets import DataSpec, build_data

NAN = float("nan")


def _row(test: float, val: float | None = None, bal: float | None = None) -> dict:
    row = {"test_acc": test, "sec_epoch": 1.0, "samples": 10}
    if val is not None:
        row["val_acc"] = val
    if bal is not None:
        row["val_bal_acc"] = bal
    return row


# --- selected_epoch / summarize on hand-made histories ----------------------------------------------------------

def test_selected_accuracy_is_the_test_accuracy_at_the_validation_peak_not_the_best_test():
    history = [_row(50, 40, 30), _row(80, 45, 35), _row(30, 70, 60), _row(60, 50, 40)]
    assert selected_epoch(history, "val_acc") == 2
    s = summarize(history, [0.1], "val_acc")
    assert s["selected_epoch"] == 2 and s["selected_acc"] == 30 and s["selected_val"] == 70
    assert s["selected_on"] == "val_acc"
    assert s["best_acc"] == 80 and s["best_epoch"] == 1  # the test-selected diagnostic is unchanged
    # the balanced score may pick another epoch than the plain one
    history[3]["val_bal_acc"] = 61
    s = summarize(history, [0.1], "val_bal_acc")
    assert (s["selected_epoch"], s["selected_acc"], s["selected_val"], s["selected_on"]) == (3, 60, 61, "val_bal_acc")


def test_ties_go_to_the_later_epoch():
    history = [_row(10, 50), _row(20, 70), _row(30, 60), _row(40, 70), _row(50, 69.999)]
    assert selected_epoch(history, "val_acc") == 3
    assert summarize(history, [], "val_acc")["selected_acc"] == 40
    flat = [_row(a, 5.0) for a in (1, 2, 3)]
    assert selected_epoch(flat, "val_acc") == 2
    assert selected_epoch([_row(1, 0.0), _row(2, 0.0)], "val_acc") == 1  # a zero score is still a score


def test_missing_and_nan_scores_are_skipped():
    history = [_row(10, 20), _row(90, NAN), _row(30), _row(40, 25), _row(95, math.inf), _row(97, -math.inf)]
    assert selected_epoch(history, "val_acc") == 3
    s = summarize(history, [], "val_acc")
    assert s["selected_acc"] == 40 and s["selected_val"] == 25
    assert selected_epoch([_row(10, NAN), _row(20), _row(30, None)], "val_acc") == -1


def test_no_selection_gives_nan_and_minus_one():
    history = [_row(10, 20, 20), _row(30, 10, 10)]
    for selection, hist in (("", history), ("val_acc", [_row(10), _row(30)]), ("val_acc", [_row(1, NAN)]),
                            ("val_acc", [])):
        s = summarize(hist, [], selection)
        assert s["selected_epoch"] == -1 and math.isnan(s["selected_acc"]) and math.isnan(s["selected_val"])
        assert s["selected_on"] == selection
    assert summarize(history, [])["selected_epoch"] == -1  # no selection by default
    assert selected_epoch([], "val_acc") == -1


# --- the selection metric ---------------------------------------------------------------------------------------

def test_selection_metric_rule():
    assert selection_metric(DataSpec("digits", imbalance=10, val_fraction=0.2)) == "val_bal_acc"
    assert selection_metric(DataSpec("digits", imbalance=1.5, val_fraction=0.1)) == "val_bal_acc"
    assert selection_metric(DataSpec("digits", imbalance=1, val_fraction=0.2)) == "val_acc"
    assert selection_metric(DataSpec("digits", imbalance=10)) == ""
    assert selection_metric(DataSpec("digits", imbalance=1, val_fraction=0.0)) == ""


# --- the class-balanced validation accuracy ---------------------------------------------------------------------

def _images(n: int) -> TensorImages:
    return TensorImages(torch.arange(n).view(n, 1, 1, 1), lambda t, train=False, generator=None: t)


def _balanced_reference(pred: np.ndarray, y: np.ndarray) -> float:
    accs = [np.mean(pred[y == c] == c) for c in np.unique(y)]  # only classes present in the labels
    return 100.0 * float(np.mean(accs))


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_balanced_accuracy_is_the_mean_over_present_classes(batch_size):
    classes, n = 6, 45
    gen = torch.Generator().manual_seed(3)
    y = torch.randint(0, 4, (n,), generator=gen)  # classes 4 and 5 absent
    y[:20] = 0  # a dominant class, so that balanced and plain accuracy differ
    table = torch.randn(n, classes, generator=gen)
    table[:20, 0] += 3.0  # the dominant class mostly right
    pred, y_np = table.argmax(1).numpy(), y.numpy()
    got = _score(FixedLogits(table), "val", _images(n), y, batch_size, False, None, balanced_over=classes)
    assert set(got) == {"val_acc", "val_bal_acc"}
    assert got["val_acc"] == pytest.approx(100.0 * np.mean(pred == y_np))
    assert got["val_bal_acc"] == pytest.approx(_balanced_reference(pred, y_np), rel=1e-6)
    over_all = 100.0 * np.mean([np.mean(pred[y_np == c] == c) if (y_np == c).any() else 0.0 for c in range(classes)])
    assert got["val_bal_acc"] != pytest.approx(over_all)  # absent classes do not count as 0
    assert got["val_bal_acc"] != pytest.approx(got["val_acc"])


def test_balanced_accuracy_hand_computed():
    # class 0: 3 of 4 right; class 2: 0 of 1; class 1 and 3 absent -> (75 + 0) / 2 = 37.5; plain: 3 / 5 = 60
    y = torch.tensor([0, 0, 0, 0, 2])
    table = torch.nn.functional.one_hot(torch.tensor([0, 0, 0, 1, 1]), 4).float()
    got = _score(FixedLogits(table), "val", _images(5), y, 2, False, None, balanced_over=4)
    assert got["val_bal_acc"] == pytest.approx(37.5) and got["val_acc"] == pytest.approx(60.0)
    plain = _score(FixedLogits(table), "val", _images(5), y, 2, False, None)
    assert "val_bal_acc" not in plain


def test_evaluate_scores_val_against_noisy_labels_with_its_balanced_accuracy():
    """On a real bundle: a least-squares linear classifier (fit on the clean training labels) is scored on the
    split against its noisy labels; the test set gets no balanced accuracy."""
    bundle = build_data(DataSpec("digits", imbalance=10, noise="sym", noise_rate=0.4, val_fraction=0.3))
    x_train = bundle.train_x.reshape(len(bundle.train_x), -1).double()
    w = torch.linalg.lstsq(x_train, torch.nn.functional.one_hot(bundle.train_true_y, 10).double()).solution

    class Linear:
        def modules(self) -> list[nn.Module]:
            return []

        def predict_heads(self, x: torch.Tensor):
            return x.reshape(len(x), -1).double() @ w, {}

    tests = EvalSets.of(bundle, lambda t, train=False, generator=None: t, torch.device("cpu"))
    assert set(tests.sets) == {"test", "val"} and tests.num_classes == 10
    got = evaluate(Linear(), tests, batch_size=64)
    pred = (bundle.val_x.reshape(len(bundle.val_x), -1).double() @ w).argmax(1).numpy()
    noisy, true = bundle.val_y.numpy(), bundle.val_true_y.numpy()
    assert got["val_acc"] == pytest.approx(100.0 * np.mean(pred == noisy))
    assert got["val_bal_acc"] == pytest.approx(_balanced_reference(pred, noisy), rel=1e-6)
    assert got["val_acc"] < 100.0 * np.mean(pred == true) - 10  # against the noisy labels, not the true ones
    assert "test_bal_acc" not in got and "test_acc" in got


# --- end to end -------------------------------------------------------------------------------------------------

def _later_argmax(values: list[float]) -> int:
    best = max(values)
    return max(i for i, v in enumerate(values) if v == best)


def test_short_digits_run_selects_on_the_balanced_validation_accuracy():
    cfg = digits_run(epochs=3, val_fraction=0.2)
    reports = []
    rec = run_trial(cfg, report=reports.append)
    assert rec["status"] == "done", rec["error"]
    rows, s = rec["epochs"], rec["summary"]
    assert len(rows) == 3
    for row in rows:
        assert 0 <= row["val_acc"] <= 100 and 0 <= row["val_bal_acc"] <= 100
    bal = [row["val_bal_acc"] for row in rows]
    chosen = _later_argmax(bal)
    assert s["selected_on"] == "val_bal_acc"
    assert s["selected_epoch"] == chosen
    assert s["selected_acc"] == rows[chosen]["test_acc"] and s["selected_val"] == bal[chosen]
    assert [r["val_score"] for r in reports] == bal  # what a tuner sees each epoch
    data = build_data(cfg.data)
    assert rec["data"]["val_size"] == len(data.val_y) and rec["data"]["train_size"] == len(data.train_y)
    assert all(row["samples"] == len(data.train_y) for row in rows)  # the split is never trained on


def test_short_digits_run_without_a_split_selects_nothing():
    rec = run_trial(digits_run(epochs=2))
    assert rec["status"] == "done", rec["error"]
    assert not any(k.startswith("val") for row in rec["epochs"] for k in row)
    s = rec["summary"]
    assert math.isnan(s["selected_acc"]) and s["selected_epoch"] == -1 and s["selected_on"] == ""
    assert "val_size" not in rec["data"]


def test_balanced_run_selects_on_plain_validation_accuracy():
    cfg = digits_run(epochs=2, imbalance=1, val_fraction=0.1)
    rec = run_trial(cfg)
    assert rec["status"] == "done", rec["error"]
    rows, s = rec["epochs"], rec["summary"]
    assert s["selected_on"] == "val_acc"
    chosen = _later_argmax([row["val_acc"] for row in rows])
    assert s["selected_epoch"] == chosen and s["selected_acc"] == rows[chosen]["test_acc"]
