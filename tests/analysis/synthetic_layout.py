"""Made-up results folders for a paper layout (no training): runs.csv and epochs.csv as `bench run
grid` writes them, with every measure column a real-world dataset records (`test_top5`,
`imagenet_acc`, `imagenet_top5`, `many_acc`, `medium_acc`, `few_acc`).

The curves are chosen so that the measures disagree about which epoch is best: for each run the
top-1 test accuracy peaks at one epoch, the other measures peak at another one, and the last epoch
is neither. A test can then tell "the value at the last epoch", "the value at the run's best
top-1 epoch" and "the highest value of that measure" apart. `expected` computes the first two
from the written epochs table alone, without the analysis code.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.grid.layout import LAYOUTS
from bench.grid.presets import PRESETS, VARIANTS, base_method

EPOCHS = 4
#: per seed: top-1 bumps (argmax at epoch 1 for even seeds, 2 for odd ones) and the other measures'
#: bumps (argmax elsewhere); the last epoch is the argmax of none
TOP1_BUMPS = ((0.0, 3.0, 1.5, 2.0), (0.0, 1.0, 3.5, 2.0))
OTHER_BUMPS = ((0.0, 1.0, 4.0, 2.0), (0.0, 5.0, 1.0, 2.0))
#: epochs column -> offset from a run's top-1 level
MEASURE_OFFSETS = {"test_top5": 18.0, "imagenet_acc": -6.0, "imagenet_top5": 14.0, "many_acc": 9.0,
                   "medium_acc": -3.0, "few_acc": -20.0}


def level(method_index: int, column_index: int, seed: int) -> float:
    """A run's top-1 level before its per-epoch bumps."""
    return 30.0 + 9.0 * method_index + 2.5 * column_index + 0.75 * seed


def write_layout_results(folder: Path, layout_name: str, methods: dict[str, int], failed: tuple = ()) -> Path:
    """runs.csv and epochs.csv for every column of `layout_name` (its cells and backbones): each method
    (a method or a variant) × `methods[m]` seeds. `failed` holds (method, seed) pairs whose runs failed."""
    from bench.grid.schema import epoch_header
    from bench.grid.store import EPOCH_COLUMNS, RUN_COLUMNS

    layout = LAYOUTS.get(layout_name)
    preset = PRESETS.get(layout.preset)
    targets = list(dict.fromkeys((col.cell, col.backbone or preset.recipe.backbone) for col in layout.columns))
    runs, epochs = [], []
    for m_index, (name, n_seeds) in enumerate(methods.items()):
        method = base_method(name)
        overrides = dict(VARIANTS.get(name).hparams) if name in VARIANTS else {}
        from methods import METHODS

        hparams = json.dumps(METHODS.get(method).resolve_hparams(overrides), sort_keys=True)
        for c_index, (cell, backbone) in enumerate(targets):
            for seed in range(n_seeds):
                run_id = f"{m_index}{c_index:02d}{seed}{name[:3]}"
                row = dict.fromkeys(RUN_COLUMNS, "")
                row.update(run_id=run_id, preset=layout.preset, dataset=cell.dataset, backbone=backbone,
                           method=method, imbalance=cell.imbalance, noise=cell.noise, noise_rate=cell.noise_rate,
                           order=preset.order, meta_per_class=preset.meta_for(cell.dataset), data_seed=seed,
                           seed=seed, epochs=EPOCHS, batch_size=preset.recipe.batch_size, colocated=1,
                           meta_set_used=False, device="cpu", git_commit="0" * 40,
                           finished_at="2026-11-21T00:00:00+00:00", hparams=hparams)
                if (name, seed) in failed:
                    row.update(status="failed", error="RuntimeError: CUDA out of memory")
                    runs.append(row)
                    continue
                base = level(m_index, c_index, seed)
                top1 = [round(base + b, 2) for b in TOP1_BUMPS[seed % 2]]
                best = max(range(EPOCHS), key=top1.__getitem__)
                row.update(status="done", last_acc=top1[-1], best_acc=top1[best], best_epoch=best,
                           best_selected_on="test", last5_acc=round(sum(top1[-5:]) / len(top1[-5:]), 4),
                           sec_per_iter=0.05 + 0.01 * m_index, sec_per_epoch=10.0, samples_per_sec=1000.0,
                           sec_total=40.0, peak_mem_mb=900.0)
                runs.append(row)
                for e in range(EPOCHS):
                    entry = {"run_id": run_id, "epoch": e, "test_acc": top1[e], "train_loss": 1.0, "lr": 0.01,
                             "sec_per_iter": 0.05, "sec_epoch": 10.0}
                    for column, offset in MEASURE_OFFSETS.items():
                        entry[column] = round(base + offset + OTHER_BUMPS[seed % 2][e], 2)
                    epochs.append(entry)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(runs, columns=RUN_COLUMNS).to_csv(folder / "runs.csv", index=False)
    header = epoch_header(set(MEASURE_OFFSETS) - set(EPOCH_COLUMNS))
    pd.DataFrame(epochs, columns=header).to_csv(folder / "epochs.csv", index=False)
    return folder


def expected(folder: Path, cell, backbone: str, measure_column: str, metric: str) -> dict[str, float]:
    """Per registry method (as written in runs.csv, variants by their base method and hparams): the seed
    mean of `measure_column` over the finished runs of `cell` on `backbone`, at each run's last epoch
    ("last") or at the epoch where its top-1 test accuracy is highest ("best"), computed from the
    written tables only."""
    runs = pd.read_csv(folder / "runs.csv", dtype={"run_id": str})
    epochs = pd.read_csv(folder / "epochs.csv", dtype={"run_id": str})
    runs = runs[(runs.status == "done") & (runs.dataset == cell.dataset) & (runs.backbone == backbone)
                & (runs.imbalance == cell.imbalance) & (runs.noise_rate == cell.noise_rate)]
    out: dict[str, list[float]] = {}
    for run in runs.itertuples():
        mine = epochs[epochs.run_id == run.run_id].sort_values("epoch")
        at = mine.iloc[-1] if metric == "last" else mine.loc[mine.test_acc.idxmax()]
        out.setdefault(f"{run.method}|{run.hparams}", []).append(float(at[measure_column]))
    return {key: sum(v) / len(v) for key, v in out.items()}
