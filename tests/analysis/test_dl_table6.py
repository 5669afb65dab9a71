"""Dynamic Loss Table 6 (Animal-10N): the layout rendered from a small synthetic results set with
the published numbers beside ours, against golden Markdown and LaTeX.

The results are made up (no training): CE, DivideMix and Dynamic Loss × 3 seeds on the one
Animal-10N cell; DivideMix seed 2 failed. After an intended change, regenerate on purpose and
review the diff:
    python tests/analysis/test_dl_table6.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

GOLDEN = Path(__file__).parent / "golden"
STEM = "dl-table6-reference"
EPOCHS = 3
#: method -> last-epoch test accuracy per seed (None: the run failed)
LAST_ACC = {"ce": (78.9, 79.6, 79.2), "dividemix": (83.1, 83.7, None), "dynamic_loss": (85.9, 86.3, 86.0)}


def write_results(folder: Path) -> Path:
    """runs.csv and epochs.csv of the synthetic Animal-10N grid, as `bench run grid` writes them."""
    from bench.grid.store import EPOCH_COLUMNS, RUN_COLUMNS

    runs, epochs = [], []
    for method, accs in LAST_ACC.items():
        for seed, last in enumerate(accs):
            run_id = f"{method[:4]}a10n{seed}"
            row = dict.fromkeys(RUN_COLUMNS, "")
            row.update(run_id=run_id, preset="dl-table6", dataset="animal10n", backbone="vgg19_bn", method=method,
                       imbalance=1, noise="none", noise_rate=0.0, order="lt-noise", meta_per_class=0, data_seed=seed,
                       seed=seed, epochs=EPOCHS, batch_size=128, colocated=1, meta_set_used=False, device="cpu",
                       git_commit="0" * 40, finished_at="2026-11-21T00:00:00+00:00", hparams="{}")
            if last is None:
                row.update(status="failed", error="RuntimeError: out of memory")
                runs.append(row)
                continue
            curve = [round(last - 4.0 + 2.0 * e, 2) for e in range(EPOCHS - 1)] + [last]
            row.update(status="done", last_acc=last, best_acc=max(curve), best_epoch=curve.index(max(curve)),
                       best_selected_on="test", last5_acc=round(sum(curve) / len(curve), 4), sec_per_iter=0.05,
                       sec_per_epoch=19.55, samples_per_sec=2560.0, sec_total=58.65, peak_mem_mb=900.0)
            runs.append(row)
            epochs += [{"run_id": run_id, "epoch": e, "test_acc": acc, "train_loss": 1.0, "lr": 0.02,
                        "sec_per_iter": 0.05, "sec_epoch": 19.55} for e, acc in enumerate(curve)]
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(runs, columns=RUN_COLUMNS).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(epochs, columns=EPOCH_COLUMNS).to_csv(folder / "epochs.csv", index=False)
    return folder


def golden_outputs(folder: Path) -> dict[str, str]:
    from analysis.results import load_results
    from analysis.tables import build_table, to_latex, to_markdown

    table = build_table(load_results(write_results(folder)), "dl-table6", reference=True)
    return {f"{STEM}.md": to_markdown(table), f"{STEM}.tex": to_latex(table)}


@pytest.mark.parametrize("name", [f"{STEM}.md", f"{STEM}.tex"])
def test_dl_table6_matches_golden_files(tmp_path, name):
    assert golden_outputs(tmp_path / "results")[name] == (GOLDEN / name).read_text(), \
        f"regenerate with: python {__file__}"


def test_dl_table6_joins_the_published_numbers(tmp_path):
    from analysis.results import load_results
    from analysis.tables import build_table, to_frame

    frame = to_frame(build_table(load_results(write_results(tmp_path / "r")), "dl-table6", reference=True))
    paper = frame[frame.source == "paper"].set_index("method")["mean"]
    assert paper.to_dict() == {"ce": 79.40, "dividemix": 84.00, "dynamic_loss": 86.54}
    assert all(frame[frame.source == "paper"].dataset == "animal10n")


def test_dl_table6_preset_expands_to_the_papers_recipe():
    from bench.grid.presets import expand

    runs = expand("dl-table6")
    assert sorted((r.method, r.seed) for r in runs) == [(m, s) for m in ("ce", "dividemix", "dynamic_loss")
                                                        for s in (0, 1, 2)]
    for r in runs:
        d = r.data
        assert (d.dataset, d.imbalance, d.noise, d.noise_rate, d.meta_per_class) == ("animal10n", 1, "none", 0.0, 0)
        assert (r.backbone, r.epochs, r.batch_size) == ("vgg19_bn", 100, 128)
        assert (r.optim.lr, r.optim.momentum, r.optim.weight_decay) == (0.02, 0.9, 5e-4)
        assert (r.schedule.name, r.schedule.warmup_epochs) == ("cosine", 0)
    dl = next(r for r in runs if r.method == "dynamic_loss").hparams
    assert (dl["warmup_epochs"], dl["primary_ratio"], dl["meta_ratio"], dl["rank_bins"]) == (5, 0.5, 0.5, 100)
    assert dl["primary_ratio"] * dl["meta_ratio"] == 0.25  # Table 1's M1


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, text in golden_outputs(Path(tmp) / "results").items():
            (GOLDEN / file_name).write_text(text)
            print(f"wrote {GOLDEN / file_name}")
