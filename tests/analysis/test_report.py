"""The README's benchmark report (`analysis.report`, `bench report`): its section regenerates from the committed
records (golden), and the test of each expected effect agrees with an independent computation."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from analysis import report as reports
from analysis.results import Cell, Results
from bench.core.errors import UsageError
from bench.grid.reports import REPORTS, Effect

REPO = Path(__file__).resolve().parents[2]
REPORT = REPORTS.get("fmnist-n-lt")
CELLS = [Cell("fashion-mnist", 10.0, "lt-prior", 0.2), Cell("fashion-mnist", 100.0, "lt-prior", 0.4)]


def _results(values: dict[str, list[list[float]]], warm: int = 0) -> Results:
    """Runs of each method with Last = values[method][cell][seed] on `CELLS`; two epochs each."""
    runs, epochs = [], []
    for method, per_cell in values.items():
        for cell, seeds in zip(CELLS, per_cell):
            for seed, value in enumerate(seeds):
                run_id = f"{method}-{cell.imbalance:g}-{seed}"
                runs.append({"run_id": run_id, "preset": "p", "dataset": cell.dataset, "backbone": "small_cnn",
                             "method": method, "imbalance": cell.imbalance, "noise": cell.noise,
                             "noise_rate": cell.noise_rate, "data_seed": seed, "seed": seed, "status": "done",
                             "last_acc": value, "best_acc": value + 1.0, "best_epoch": 0, "last5_acc": value,
                             "selected_acc": math.nan, "hparams": json.dumps({"warmup_epochs": warm}),
                             "sec_total": 10.0, "finished_at": f"2026-01-01T00:00:{10 + seed:02d}+00:00",
                             "colocated": 2})
                epochs += [{"run_id": run_id, "epoch": 0, "test_acc": value + 1.0},
                           {"run_id": run_id, "epoch": 1, "test_acc": value}]
    return Results(root=Path("."), runs=pd.DataFrame(runs), epochs=pd.DataFrame(epochs))


def test_the_readme_section_is_what_the_committed_records_give():
    results, meta = reports.load_records(REPORT, REPO / REPORT.records)
    section = reports.render_section(REPORT, results, meta, REPO)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert reports.current_section(readme, REPORT.name) == section


def test_the_committed_records_are_the_report_preset_with_three_seeds_per_cell():
    results, meta = reports.load_records(REPORT, REPO / REPORT.records)
    assert set(results.runs["preset"]) == {REPORT.preset}
    assert meta["command"] == reports.RERUN and meta["machine"]["device"]
    done = results.done.groupby(["method", "imbalance", "noise_rate"]).size()
    assert len(results.done) == len(results.runs) == 132 and set(done) == {3}


def test_the_effect_test_is_a_one_sided_paired_t_test_with_holm():
    ce = [[70.0, 71.0, 72.0], [40.0, 42.0, 41.0]]
    up = [[71.0, 73.5, 72.5], [43.0, 42.0, 44.0]]  # above CE by 1, 2.5, .5, 3, 0, 3
    down = [[69.0, 70.5, 71.0], [39.0, 42.5, 40.0]]
    results = _results({"ce": ce, "balanced_softmax": up, "dal": down})
    effects = (Effect("balanced_softmax", "ce", "s"), Effect("dal", "ce", "s"))
    tests = reports.judge_effects(results, effects, CELLS)
    # independently: t = mean / (sd / sqrt(n)), one-sided p from Student's t with n - 1 degrees of freedom
    from scipy.stats import t as student

    p_values = []
    for method in (up, down):
        d = np.array(method).ravel() - np.array(ce).ravel()
        t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
        p_values.append(student.sf(t, len(d) - 1))
    assert tests[0].n == tests[1].n == 6
    assert tests[0].p == pytest.approx(p_values[0])
    assert tests[1].p == pytest.approx(p_values[1])
    ordered = sorted(p_values)  # Holm over two: the smaller times 2, the larger at least that
    holm = {ordered[0]: min(1, 2 * ordered[0]), ordered[1]: min(1, max(2 * ordered[0], ordered[1]))}
    assert tests[0].p_holm == pytest.approx(holm[p_values[0]])
    assert tests[1].p_holm == pytest.approx(holm[p_values[1]])
    assert tests[0].deltas[CELLS[0]] == pytest.approx((1 + 2.5 + 0.5) / 3)
    assert tests[0].verdict(0.05) == "yes"
    assert tests[1].verdict(0.05).startswith("no")


def test_an_effect_covers_only_its_cells_and_needs_three_pairs():
    ce = [[70.0, 71.0, 72.0], [40.0, 42.0, 41.0]]
    up = [[70.0, 71.0, 72.0], [41.0, 43.0, 42.0]]  # above only at rho 100, by exactly 1 on every seed
    results = _results({"ce": ce, "balanced_softmax": up})
    at_100 = reports.judge_effects(results, (Effect("balanced_softmax", "ce", "s", imbalances=(100,)),), CELLS)[0]
    assert at_100.cells == [CELLS[1]] and at_100.n == 3
    assert at_100.p == 0.0 and at_100.verdict(0.05) == "yes"  # a constant difference: certain
    nowhere = reports.judge_effects(results, (Effect("balanced_softmax", "ce", "s", noise_rates=(0.3,)),), CELLS)[0]
    assert nowhere.n == 0 and nowhere.verdict(0.05).startswith("not tested")
    missing = reports.judge_effects(results, (Effect("dal", "ce", "s"),), CELLS)[0]
    assert missing.n == 0 and math.isnan(missing.p_holm)


def test_the_phase_table_reads_the_accuracy_when_the_warm_up_ends():
    results = _results({"dividemix": [[60.0, 60.0, 60.0], [30.0, 30.0, 30.0]]}, warm=1)
    table = reports.phase_table(results)
    row = [line for line in table.splitlines() if line.startswith("| DivideMix")][0]
    # warm-up 1 epoch: epoch 0's test accuracy (Last + 1) is the accuracy at its end
    assert row.split("|")[2].strip() == "1" and row.split("|")[3].strip() == "46.00"


def test_the_phase_table_prints_each_diagnostic_in_its_unit():
    results = _results({"mwnet": [[60.0, 60.0, 60.0], [30.0, 30.0, 30.0]]})
    results.epochs["weight_clean"] = [0.5, 0.7] * 6  # plain numbers, averaged over every epoch
    results.epochs["lc_weight_mean"] = 0.99  # a fraction, printed as a percentage
    results.epochs["split_precision_a"] = 90.0  # a percentage already
    row = [line for line in reports.phase_table(results).splitlines() if line.startswith("| MW-Net")][0]
    assert ("mean weight of clean-labelled samples 0.60" in row and "weight on the given label 99.0 %" in row
            and "division precision 90.0 %" in row)


def test_wall_time_counts_the_time_with_a_run_in_progress():
    # runs over [0:30, 1:00], [1:30, 2:30] and [2:00, 2:20]: 30 s + 60 s; the pause 1:00-1:30 does not count
    runs = pd.DataFrame({"finished_at": ["2026-01-01T00:01:00+00:00", "2026-01-01T00:02:30+00:00",
                                         "2026-01-01T00:02:20+00:00"],
                         "sec_total": [30.0, 60.0, 20.0]})
    assert reports.wall_seconds(runs) == 90.0
    assert reports.duration_text(3725) == "1 h 02 min" and reports.duration_text(300) == "5 min"


def test_a_section_replaces_only_the_text_between_its_markers():
    text = f"a\n{reports.start_marker('x')}\nold\n{reports.end_marker('x')}\nb\n"
    new = f"{reports.start_marker('x')}\nnew\n{reports.end_marker('x')}\n"
    assert reports.replace_section(text, "x", new) == f"a\n{new}b\n"
    assert reports.current_section(text, "x") == f"{reports.start_marker('x')}\nold\n{reports.end_marker('x')}\n"
    with pytest.raises(UsageError, match="no section markers"):
        reports.replace_section("a\nb\n", "x", new)


def test_import_keeps_the_report_preset_and_the_epoch_columns_its_runs_fill(tmp_path):
    source = tmp_path / "grid"
    source.mkdir()
    records = REPO / REPORT.records
    runs = pd.read_csv(records / "runs.csv", dtype=str, keep_default_na=False)
    other = runs.iloc[:1].assign(preset="quick", run_id="000000000000")
    pd.concat([runs, other]).to_csv(source / "runs.csv", index=False)
    epochs = pd.read_csv(records / "epochs.csv", dtype=str, keep_default_na=False).assign(unused="")
    epochs.to_csv(source / "epochs.csv", index=False)
    dest = reports.import_records(REPORT, source, tmp_path)
    copied = pd.read_csv(dest / "runs.csv", dtype=str, keep_default_na=False)
    assert list(copied["run_id"]) == list(runs["run_id"])
    assert "unused" not in pd.read_csv(dest / "epochs.csv").columns
    assert json.loads((dest / "report.json").read_text())["command"] == reports.RERUN


def test_bench_report_check_passes_on_the_committed_records_and_fails_on_a_changed_readme(capsys, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, _ = run_cli(capsys, "report", "fmnist-n-lt", "--from-results", "--check")
    assert code == 0, out
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    changed = tmp_path / "README.md"
    changed.write_text(readme.replace("**Expected effects**", "**Effects**"), encoding="utf-8")
    code, out, _ = run_cli(capsys, "report", "fmnist-n-lt", "--from-results", "--check", "--readme", str(changed))
    assert code == 1 and "out of date" in out


def test_the_given_labels_accuracy_is_one_minus_the_mean_realized_noise():
    runs = pd.DataFrame({"noise_rate_realized": ["0.25", "0.35", ""]})  # a failed run has none
    assert "right for 70.0 % of the training images" in reports._given_label_text(runs)
    assert reports._given_label_text(pd.DataFrame({"run_id": ["a"]})) == ""  # records from before the column
