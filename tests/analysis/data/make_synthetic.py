"""Write the small synthetic results set the analysis tests read (`synthetic/runs.csv`, `epochs.csv`).

The numbers are made up (no training): 4 methods × 4 CIFAR-10-N-LT cells (ρ ∈ {10, 100} ×
λ ∈ {0.1, 0.3}) × 3 seeds, 6 epochs each, built to exercise every branch of the tables:
- `dynamic_loss` never ran on ρ=100 λ=0.1 ("not run");
- `dividemix` seed 2 failed on ρ=100 λ=0.3 (n=2, one failure), and every `dividemix` run
  failed on ρ=10 λ=0.3 except seed 0 ("n=1");
- `ce` and `balanced_softmax` tie for the best on ρ=100 λ=0.1 (both bold).

Regenerate on purpose (then the golden tables, see tests/analysis/test_tables.py):
    python tests/analysis/data/make_synthetic.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.grid.store import EPOCH_COLUMNS, RUN_COLUMNS

OUT = Path(__file__).parent / "synthetic"
METHODS = {"ce": (60.0, 0.010), "balanced_softmax": (66.0, 0.010), "dividemix": (64.0, 0.052),
           "dynamic_loss": (71.0, 0.061)}
CELLS = [(10, 0.1), (10, 0.3), (100, 0.1), (100, 0.3)]
SEEDS = (0, 1, 2)
EPOCHS = 6


def _last_acc(method: str, rho: int, rate: float, seed: int, rng: np.random.Generator) -> float:
    base, _ = METHODS[method]
    value = base + (15.0 if rho == 10 else 0.0) - 40.0 * rate + rng.normal(0, 1.0)
    if (method, rho, rate) in {("ce", 100, 0.1), ("balanced_softmax", 100, 0.1)}:
        value = 62.0 + (0.5, -0.5, 0.0)[seed]  # the tie for best: both means are exactly 62.00
    return round(value, 2)


def build() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    runs, epochs = [], []
    for method, (_, sec_per_iter) in METHODS.items():
        for rho, rate in CELLS:
            for seed in SEEDS:
                if method == "dynamic_loss" and (rho, rate) == (100, 0.1):
                    continue
                failed = method == "dividemix" and (((rho, rate) == (100, 0.3) and seed == 2)
                                                    or ((rho, rate) == (10, 0.3) and seed > 0))
                run_id = f"{method[:4]}{rho:03d}{int(rate * 10)}{seed}"
                last = _last_acc(method, rho, rate, seed, rng)
                curve = [round(last - 12.0 * 0.55 ** e + rng.normal(0, 0.8), 2) for e in range(EPOCHS - 1)] + [last]
                spi = round(sec_per_iter * (1 + rng.normal(0, 0.03)), 5)
                row = dict.fromkeys(RUN_COLUMNS, "")
                row.update(
                    run_id=run_id, preset="synthetic", dataset="cifar10", backbone="resnet32", method=method,
                    imbalance=rho, noise="lt-prior", noise_rate=rate, order="lt-noise", meta_per_class=10,
                    data_seed=seed, seed=seed, epochs=EPOCHS, batch_size=128, colocated=1,
                    meta_set_used=method == "dynamic_loss", device="cpu", git_commit="0" * 40,
                    finished_at="2026-11-21T00:00:00+00:00", hparams="{}",
                )
                if failed:
                    row.update(status="failed", error="RuntimeError: out of memory")
                    for key in ("last_acc", "best_acc", "best_epoch", "last5_acc", "sec_per_iter",
                                "sec_per_epoch", "samples_per_sec", "sec_total", "peak_mem_mb"):
                        row[key] = float("nan")
                    runs.append(row)
                    continue
                iters = 50_000 // (rho // 10 + 1) // 128
                row.update(
                    status="done", last_acc=last, best_acc=max(curve), best_epoch=int(np.argmax(curve)),
                    best_selected_on="test", last5_acc=round(float(np.mean(curve[-5:])), 4), sec_per_iter=spi,
                    sec_per_epoch=round(spi * iters, 4), samples_per_sec=round(128 / spi, 1),
                    sec_total=round(spi * iters * EPOCHS, 3), peak_mem_mb=900.0,
                )
                runs.append(row)
                for epoch, acc in enumerate(curve):
                    record = {"run_id": run_id, "epoch": epoch, "test_acc": acc, "train_loss": round(2.0 * 0.7 ** epoch, 4),
                              "lr": 0.1, "sec_per_iter": spi, "sec_epoch": round(spi * iters, 4)}
                    if method == "dividemix":
                        record["split_precision_a"] = round(0.6 + 0.05 * epoch, 3)
                    if method == "dynamic_loss":
                        record["lc_label_acc"] = round(70.0 + 3.0 * epoch, 2)
                    epochs.append(record)
    return pd.DataFrame(runs, columns=RUN_COLUMNS), pd.DataFrame(epochs, columns=EPOCH_COLUMNS + ["lc_label_acc", "split_precision_a"])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    runs, epochs = build()
    runs.to_csv(OUT / "runs.csv", index=False)
    epochs.to_csv(OUT / "epochs.csv", index=False)
    print(f"wrote {len(runs)} runs and {len(epochs)} epochs to {OUT}")


if __name__ == "__main__":
    main()
