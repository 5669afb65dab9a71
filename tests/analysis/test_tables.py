"""Tables: golden outputs, the reference join, bolding, missing cells, layouts against the
published numbers and the presets, clean failures.

The golden files in tests/analysis/golden/ are the exact Markdown and LaTeX made from the
synthetic results set (tests/analysis/data/synthetic/). After an intended change to the
table printer (or to make_synthetic.py), regenerate them on purpose and review the diff:
    python tests/analysis/test_tables.py
"""
from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.layouts import LAYOUTS, default_layout, get_layout
from analysis.reference import lookup, published, published_time_ms, table_methods
from analysis.results import load_results
from analysis.tables import build_table, latex_escape, to_frame, to_latex, to_markdown
from bench.cli import main
from bench.core.errors import UsageError

DATA = Path(__file__).parent / "data" / "synthetic"
GOLDEN = Path(__file__).parent / "golden"
GOLDEN_CASES = {  # file stem -> (layout, metric, reference)
    "grid-last": ("grid", "last", False),
    "dl-table2-reference": ("dl-table2", None, True),
}


def golden_outputs() -> dict[str, str]:
    results = load_results(DATA)
    out = {}
    for stem, (layout, metric, reference) in GOLDEN_CASES.items():
        table = build_table(results, layout, metric=metric, reference=reference)
        out[f"{stem}.md"] = to_markdown(table)
        out[f"{stem}.tex"] = to_latex(table)
    return out


@pytest.mark.parametrize("name", sorted(f"{s}.{e}" for s in GOLDEN_CASES for e in ("md", "tex")))
def test_tables_match_golden_files(name):
    assert golden_outputs()[name] == (GOLDEN / name).read_text(), f"regenerate with: python {__file__}"


def _frame(layout="dl-table2", metric=None, reference=True, results=None):
    table = build_table(results or load_results(DATA), layout, metric=metric, reference=reference)
    return to_frame(table)


def _cell(frame, method, metric, source, imbalance, rate):
    hit = frame[(frame.method == method) & (frame.metric == metric) & (frame.source == source)
                & (frame.imbalance == imbalance) & ((frame.noise_rate - rate).abs() < 1e-9)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_reference_join_finds_the_published_number():
    frame = _frame()
    paper = _cell(frame, "balanced_softmax", "last", "paper", 100, 0.3)
    assert paper["mean"] == 62.03
    ours = _cell(frame, "balanced_softmax", "last", "ours", 100, 0.3)
    delta = _cell(frame, "balanced_softmax", "last", "Δ", 100, 0.3)
    assert delta["mean"] == pytest.approx(round(ours["mean"], 2) - 62.03)
    assert _cell(frame, "ce", "best", "paper", 10, 0.1)["mean"] == 77.14  # "Cross Entopy" spelling


def test_lookup_picks_the_row_of_our_backbone_and_flags_defects():
    key = ("cifar10", 1.0, "sym", 0.4)
    assert lookup("fsr", 1, ("FSR", "FSR-R32"), key, "last", "wrn28_10").value == 93.7
    assert lookup("fsr", 1, ("FSR", "FSR-R32"), key, "last", "resnet32").value == 90.2
    famus_best = lookup("dynamic_loss", 3, ("FaMUS",), ("cifar100", 100.0, "lt-prior", 0.3), "best")
    assert famus_best.value == 28.50 and any("below its Last" in f for f in famus_best.flags)
    unstated = lookup("dynamic_loss", 7, ("Dynamic Loss",), ("cifar10", 10.0, "none", 0.0), "last")
    assert unstated.metric == "acc" and any("does not say" in f for f in unstated.flags)
    assert lookup("dynamic_loss", 2, ("Cross Entopy",), key, "last") is None  # no such cell
    assert published_time_ms("famus", 1, ("MW-Net",)).value == 933


def test_ties_on_the_displayed_value_are_all_bold_per_metric():
    frame = _frame(reference=False)
    column = (frame.imbalance == 100) & ((frame.noise_rate - 0.1).abs() < 1e-9)
    last = frame[column & (frame.metric == "last")]
    assert set(last[last.bold].method) == {"ce", "balanced_softmax"}
    best = frame[column & (frame.metric == "best")]  # bolded separately from the Last sub-rows
    assert list(best[best.bold]["mean"]) == [best["mean"].max()]
    assert set(frame[frame.bold & (frame.kind == "avg")].method) <= {"balanced_softmax", "dynamic_loss"}


def test_missing_cells_say_why(tmp_path):
    frame = _frame("grid", "last", reference=False)
    assert _cell(frame, "dynamic_loss", "last", "ours", 100, 0.1)["text"] == "not run"
    assert _cell(frame, "dividemix", "last", "ours", 10, 0.3)["text"].endswith("(n=1, 2 failed)")
    assert _cell(frame, "dividemix", "last", "ours", 100, 0.3)["n"] == 2
    avg = frame[(frame.method == "dynamic_loss") & (frame.kind == "avg")].iloc[0]
    assert avg["text"] == "–"
    # every seed failed: the reason is shown
    folder = tmp_path / "r"
    shutil.copytree(DATA, folder)
    runs = pd.read_csv(folder / "runs.csv")
    runs.loc[(runs.method == "dividemix") & (runs.imbalance == 10) & (runs.noise_rate == 0.3), "status"] = "failed"
    runs.to_csv(folder / "runs.csv", index=False)
    text = _cell(_frame("grid", "last", False, load_results(folder)), "dividemix", "last", "ours", 10, 0.3)["text"]
    assert text.startswith("failed: RuntimeError: out of memory")


def test_caption_states_the_spread_and_n():
    table = build_table(load_results(DATA), "grid", metric="best")
    assert "sample standard deviation, not the standard error" in table.caption
    assert "n = 1–3 seeds per cell" in table.caption and "selected on the test set" in table.caption


def test_seeds_of_different_configurations_are_not_pooled(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(DATA, folder)
    runs = pd.read_csv(folder / "runs.csv")
    runs.loc[runs.index[0], "epochs"] = 99
    runs.to_csv(folder / "runs.csv", index=False)
    with pytest.raises(UsageError, match="different epochs"):
        load_results(folder)


@pytest.mark.parametrize("name", [n for n in LAYOUTS.names() if LAYOUTS.get(n).paper])
def test_paper_layouts_match_the_published_table(name):
    layout = LAYOUTS.get(name)
    printed = table_methods(layout.paper, layout.table)
    for names in layout.paper_names.values():
        assert any(n in printed for n in names), names
    for col in layout.columns:
        ref = published()
        dataset, imbalance, noise, rate = col.ref_key()
        hits = ref[(ref.paper == layout.paper) & (ref.table == layout.table) & (ref.dataset == dataset)
                   & (ref.imbalance == imbalance) & (ref.noise == noise) & ((ref.noise_rate - rate).abs() < 1e-9)]
        assert len(hits), f"{name}: no published number for column {col.group} {col.label}"


@pytest.mark.parametrize("name", [n for n in LAYOUTS.names() if LAYOUTS.get(n).preset])
def test_paper_layouts_cover_their_presets_cells(name):
    from analysis.results import Cell
    from bench.grid.presets import expand

    layout = LAYOUTS.get(name)
    cells = {Cell(r.data.dataset, float(r.data.imbalance), r.data.noise if r.data.noise_rate > 0 else "none",
                  float(r.data.noise_rate)) for r in expand(layout.preset)}
    assert cells == {col.cell for col in layout.columns}


def test_default_layout_follows_the_preset(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(DATA, folder)
    assert default_layout(load_results(folder)) == "grid"
    runs = pd.read_csv(folder / "runs.csv")
    runs["preset"] = "cifar10-n-lt"
    runs.to_csv(folder / "runs.csv", index=False)
    assert default_layout(load_results(folder)) == "dl-table2"


def test_latex_escapes_specials_and_greek():
    assert latex_escape("ρ=10 & 5% a_b ± 1") == r"$\rho$=10 \& 5\% a\_b $\pm$ 1"


def test_table_command_writes_three_formats(tmp_path, capsys):
    folder = tmp_path / "r"
    shutil.copytree(DATA, folder)
    assert main(["table", "--results", str(folder), "--format", "latex"]) == 0
    assert capsys.readouterr().out.startswith(r"\begin{table}")
    written = sorted(p.name for p in (folder / "tables").iterdir())
    assert written == ["grid-last.csv", "grid-last.md", "grid-last.tex"]
    assert not math.isnan(pd.read_csv(folder / "tables" / "grid-last.csv")["mean"].iloc[0])


@pytest.mark.parametrize("argv, message", [
    (["--layout", "dl-tabel2"], "did you mean 'dl-table2'"),
    (["--layout", "gdw-table2"], "none of the 6 cells of layout 'gdw-table2'"),
    (["--reference"], "--reference needs a paper layout"),
    (["--metric", "top5"], "unknown --metric 'top5'"),
    (["--format", "html"], "unknown --format 'html'"),
    (["--preset", "quick"], "no run of preset 'quick'"),
])
def test_table_command_fails_cleanly(argv, message, capsys):
    assert main(["table", "--results", str(DATA), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_or_empty_results_fail_cleanly(tmp_path, capsys):
    assert main(["table", "--results", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["table", "--results", str(tmp_path)]) == 2
    assert "holds no runs" in capsys.readouterr().err
    (tmp_path / "runs.csv").write_text(",".join(pd.read_csv(DATA / "runs.csv").columns) + "\n")
    assert main(["table", "--results", str(tmp_path)]) == 2
    assert "holds no runs" in capsys.readouterr().err


def test_known_defects_of_the_published_table_are_footnoted(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(DATA, folder)
    runs = pd.read_csv(folder / "runs.csv")
    runs["dataset"] = "cifar100"
    runs["method"] = runs["method"].replace({"dynamic_loss": "famus"})
    runs.to_csv(folder / "runs.csv", index=False)
    table = build_table(load_results(folder), "dl-table3", reference=True)
    assert any("prints FaMUS averages 30.72" in note for note in table.footnotes)
    famus_best_paper = next(row for key, row in zip(table.rows, table.entries) if key == ("famus", "best", "paper"))
    flagged = [e for e in famus_best_paper if e.notes]
    assert [e.mean for e in flagged] == [28.50, 27.24]  # ρ=100 λ=0.3 and 0.4 only
    assert "⚠" in to_markdown(table)


def test_famus_table1_shows_our_time_per_iteration_beside_the_papers(tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(DATA, folder)
    runs = pd.read_csv(folder / "runs.csv")
    runs = runs[runs.imbalance == 10].assign(imbalance=1, noise="sym")
    runs["noise_rate"] = runs["noise_rate"].replace({0.1: 0.2, 0.3: 0.4})
    runs["method"] = runs["method"].replace({"ce": "mwnet", "dynamic_loss": "famus"})
    runs.to_csv(folder / "runs.csv", index=False)
    frame = _frame("famus-table1", results=load_results(folder))
    time = frame[frame.kind == "time"].set_index(["method", "source"])
    mwnet = runs[(runs.method == "mwnet") & (runs.status == "done")]["sec_per_iter"]
    assert time.loc[("mwnet", "ours"), "mean"] == pytest.approx(1000 * mwnet.median())
    assert time.loc[("mwnet", "paper"), "mean"] == 933 and time.loc[("famus", "paper"), "mean"] == 284
    ratio = time.loc[("famus", "ours"), "mean"] / 284
    assert time.loc[("famus", "Δ"), "text"] == f"×{ratio:.2f}"
    assert _cell(frame[frame.dataset == "cifar10"], "famus", "best", "paper", 1, 0.4)["mean"] == 90.5


def test_ls_layouts_lists_every_layout(capsys):
    assert main(["ls", "layouts"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ["grid", *LAYOUTS.names()])


def test_get_layout_grid_needs_results():
    with pytest.raises(ValueError):
        get_layout("grid")


# ------------------------------------------------------------------------ † significance marks


def _seeded(folder: Path, values: dict[tuple[str, float, float], list[float]]) -> Path:
    """A results folder with the given last-epoch accuracies: (method, ρ, noise rate) -> one value per
    seed (data seed = train seed = position). Rows are copied from the synthetic set's runs of that
    method, so every other column (hparams, recipe) is a real one."""
    runs, epochs = pd.read_csv(DATA / "runs.csv"), pd.read_csv(DATA / "epochs.csv")
    rows, curves = [], []
    for (method, imbalance, rate), accs in values.items():
        template = runs[(runs.method == method) & (runs.status == "done")].iloc[0]
        for seed, acc in enumerate(accs):
            run_id = f"{method[:4]}{int(imbalance)}{int(rate * 10)}s{seed}"
            rows.append(template.copy().to_dict() | {
                "run_id": run_id, "imbalance": imbalance, "noise_rate": rate, "data_seed": seed, "seed": seed,
                "last_acc": acc, "best_acc": acc, "last5_acc": acc})
            curves.append(epochs[epochs.run_id == template.run_id].assign(run_id=run_id))
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=runs.columns).to_csv(folder / "runs.csv", index=False)
    pd.concat(curves).to_csv(folder / "epochs.csv", index=False)
    return folder


def _daggers(frame: pd.DataFrame) -> set[tuple[str, str]]:
    """(method, column) of every "ours" entry with a †."""
    ours = frame[(frame.source == "ours") & frame.significant]
    return set(zip(ours.method, ours.column))


def test_dagger_marks_a_large_gain_over_the_reference_and_nothing_else(tmp_path):
    base = [70.1, 71.4, 69.8, 70.9, 70.3, 71.0]
    jitter = [0.3, -0.2, 0.1, -0.4, 0.25, -0.05]
    values = {("ce", 10, 0.1): base,
              ("balanced_softmax", 10, 0.1): [v + 5.0 for v in base],  # the same large gain on every seed
              ("dividemix", 10, 0.1): [v + j for v, j in zip(base, jitter)],  # no real difference
              ("ce", 10, 0.3): base,
              ("balanced_softmax", 10, 0.3): [v + 3.0 + j for v, j in zip(base, jitter)],  # noisy large gain
              ("dividemix", 10, 0.3): [v + j for v, j in zip(base, jitter)]}
    table = build_table(load_results(_seeded(tmp_path / "r", values)), "grid", metric="last")
    frame = to_frame(table)
    assert _daggers(frame) == {("balanced_softmax", "lt-prior 0.1"),
                               ("balanced_softmax", "lt-prior 0.3")}
    tests = frame[frame.source == "ours"].set_index(["method", "column"])["sig_test"]
    assert tests[("balanced_softmax", "lt-prior 0.1")] == "constant Δ"  # certain, no p
    assert tests[("balanced_softmax", "lt-prior 0.3")] == "paired t"
    assert tests[("dividemix", "lt-prior 0.3")] == "paired t"
    assert set(frame[frame.method == "ce"]["sig_test"]) == {""}  # the reference is never tested against itself
    assert not frame["text"].str.contains("†").any()  # the mark is its own column, not glued to the number
    markdown, latex = to_markdown(table), to_latex(table)
    md_rows = {line.split("|")[1].strip(): line for line in markdown.splitlines() if line.startswith("| ")}
    assert md_rows["Balanced Softmax"].count("†") == 2
    assert "†" not in md_rows["CE"] and "†" not in md_rows["DivideMix"]
    assert latex.count(r"$^\dagger$") == 2
    caption = table.caption
    assert "†: differs from CE (reference) at α = 0.05: in a cell, paired t-test over seeds" in caption
    assert "with Holm over the methods compared with CE in that column, which needs ≥ 3 seeds" in caption
    assert "in Avg, Wilcoxon signed-rank over the averaged cells' means with Holm over the methods" in caption
    assert r"$^{\dagger}$: differs from CE (reference) at $\alpha$ = 0.05" in latex


def _scipy_marks(runs: pd.DataFrame, reference: str, alpha: float = 0.05, correct: bool = True
                 ) -> dict[tuple[str, float, float], bool]:
    """Paired t-test of each method vs `reference` per cell (pairs by seed, ≥ 3 pairs), Holm over the
    methods tested in that cell (raw p < alpha without `correct`): scipy and statsmodels directly, on
    the written runs table."""
    from scipy import stats as st
    from statsmodels.stats.multitest import multipletests

    out = {}
    done = runs[runs.status == "done"]
    for (imbalance, rate), cell in done.groupby(["imbalance", "noise_rate"]):
        ref = cell[cell.method == reference].set_index("seed")["last_acc"]
        tested = {}
        for method, mine in cell[cell.method != reference].groupby("method"):
            mine = mine.set_index("seed")["last_acc"]
            common = mine.index.intersection(ref.index)
            if len(common) >= 3:
                tested[method] = st.ttest_rel(mine[common], ref[common]).pvalue
        if tested:
            reject = multipletests(list(tested.values()), alpha=alpha, method="holm")[0] if correct else \
                [p < alpha for p in tested.values()]
            out |= {(m, float(imbalance), float(rate)): bool(r) for m, r in zip(tested, reject)}
    return out


def test_dagger_matches_scipy_and_statsmodels_directly(tmp_path):
    import numpy as np
    from scipy import stats as st
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(7)
    cells = [(rho, rate) for rho in (10, 100) for rate in (0.1, 0.2, 0.3, 0.4)]  # 8 cells: Wilcoxon can reject
    gains = {"ce": 0.0, "balanced_softmax": 0.6, "dividemix": 0.0, "dynamic_loss": 4.0}
    values = {}
    for c, (rho, rate) in enumerate(cells):
        seed_effect = rng.normal(0, 1.0, 5)
        for method, gain in gains.items():
            values[(method, rho, rate)] = list(np.round(60 + c + gain + seed_effect + rng.normal(0, 0.5, 5), 2))
    folder = _seeded(tmp_path / "r", values)
    frame = to_frame(build_table(load_results(folder), "grid", metric="last"))
    ours = frame[(frame.source == "ours") & (frame.kind == "cell")]
    shown = {(m, i, r): bool(s) for m, i, r, s in zip(ours.method, ours.imbalance, ours.noise_rate, ours.significant)
             if m != "ce"}
    expected = _scipy_marks(pd.read_csv(folder / "runs.csv"), "ce")
    assert shown == expected
    assert any(expected.values()) and not all(expected.values())  # the comparison is not trivial
    assert _scipy_marks(pd.read_csv(folder / "runs.csv"), "ce", correct=False) != expected  # and Holm matters
    # Avg: Wilcoxon signed-rank over the 8 cells' seed means vs CE, Holm over the 3 methods
    runs = pd.read_csv(folder / "runs.csv")
    means = runs.groupby(["method", "imbalance", "noise_rate"])["last_acc"].mean().unstack("method")
    others = [m for m in gains if m != "ce"]
    pvalues = [st.wilcoxon(means[m], means["ce"]).pvalue for m in others]
    reject = multipletests(pvalues, alpha=0.05, method="holm")[0]
    avg = frame[(frame.source == "ours") & (frame.kind == "avg")].set_index("method")
    assert {m: bool(avg.loc[m, "significant"]) for m in others} == dict(zip(others, map(bool, reject)))
    assert avg.loc["dynamic_loss", "significant"] and not avg.loc["dividemix", "significant"]
    holm_p = multipletests(pvalues, alpha=0.05, method="holm")[1]
    assert list(avg.loc[others, "p_holm"]) == pytest.approx(list(holm_p))


def test_dagger_agrees_with_the_stats_command_on_the_synthetic_set():
    from analysis.stats import CONSTANT, within_cells

    results = load_results(DATA)
    frame = to_frame(build_table(results, "grid", metric="last"))
    ours = frame[(frame.source == "ours") & (frame.kind == "cell")]
    shown = ours.set_index(["method", "imbalance", "noise_rate"])
    within = within_cells(results, "last", "ce")
    within = within[within.test != "reference"]
    for _, row in within.iterrows():
        mine = shown.loc[(row["method"], row["cell"].imbalance, row["cell"].noise_rate)]
        assert mine["significant"] == (row["test"] == CONSTANT or row["significant"] is True)
        assert mine["p_holm"] == pytest.approx(row["p_holm"], nan_ok=True)
    assert within["significant"].eq(True).any() and not ours[ours.method != "ce"]["significant"].all()


def test_single_seed_results_have_no_marks_and_the_caption_says_why(tmp_path):
    values = {("ce", 10, 0.1): [70.0], ("dynamic_loss", 10, 0.1): [90.0],
              ("ce", 10, 0.3): [60.0], ("dynamic_loss", 10, 0.3): [85.0]}
    table = build_table(load_results(_seeded(tmp_path / "r", values)), "grid", metric="last")
    assert not to_frame(table)["significant"].any()
    assert "†" not in to_markdown(table).split("\n", 1)[1] and "$^\\dagger$" not in to_latex(table)
    assert ("which needs ≥ 3 seeds of both methods, so no cell has a mark here (the runs have at most 1 seed "
            "per cell)") in table.caption


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    GOLDEN.mkdir(exist_ok=True)
    for file_name, text in golden_outputs().items():
        (GOLDEN / file_name).write_text(text)
        print(f"wrote {GOLDEN / file_name}")
