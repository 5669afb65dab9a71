"""Issue 14: seeds pool only when the runs agree in every config field but the seeds (the `config_key`
column), failed runs do not block pooling, and a damaged runs.csv stops analysis with one line."""
import dataclasses
import json

import pandas as pd
import pytest

from analysis.results import load_results
from bench.core.errors import UsageError
from bench.grid.schema import config_key
from bench.grid.store import ResultsStore
from bench.nn.speed import SpeedSpec
from bench.train.config import RunConfig
from noisytail_datasets import DataSpec


def config(seed=0, lr=0.1, amp="auto", preset="quick", epochs=2):
    cfg = RunConfig(data=DataSpec(dataset="digits", imbalance=10, noise="sym", noise_rate=0.4, data_seed=seed),
                    method="ce", backbone="mlp", epochs=epochs, batch_size=64, seed=seed, preset=preset,
                    speed=SpeedSpec(amp=amp))
    return cfg.with_(optim=dataclasses.replace(cfg.optim, lr=lr))


def record(cfg, status="done", acc=50.0):
    return {"run_id": cfg.run_id, "preset": cfg.preset, "config": cfg.to_dict(), "status": status,
            "error": "" if status == "done" else "RuntimeError: boom",
            "summary": {"last_acc": acc, "best_acc": acc, "best_epoch": 0, "last5_acc": acc} if status == "done"
            else {},
            "epochs": [{"epoch": 0, "test_acc": acc, "train_loss": 1.0, "lr": 0.1, "sec_per_iter": 0.01,
                        "sec_epoch": 0.1}] if status == "done" else []}


def store_of(tmp_path, *records):
    store = ResultsStore(tmp_path)
    for rec in records:
        store.write(rec)
    store.finalize()
    return tmp_path


def test_the_config_key_ignores_only_the_seeds_and_the_preset():
    base = config().to_dict()
    assert config_key(base) == config_key(config(seed=3, preset="other").to_dict())
    assert config_key(base) != config_key(config(lr=0.5).to_dict())
    assert config_key(base) != config_key(config(amp="on").to_dict())
    old = {k: v for k, v in base.items() if k not in ("speed", "pretrained", "epoch_samples")}
    old["data"] = {k: v for k, v in base["data"].items() if k not in ("pad_mode", "image_size")}
    assert config_key(old) == config_key(base)  # a record from before those fields existed


def test_seeds_that_ran_different_learning_rates_are_not_pooled(tmp_path):
    # before: only CONFIG_KEYS were compared, so these pooled as "n = 2 seeds"
    store_of(tmp_path, record(config(seed=0, lr=0.05)), record(config(seed=1, lr=0.5)))
    with pytest.raises(UsageError, match=r"method .ce. ran with different optim\.lr \((0\.05 vs 0\.5|0\.5 vs 0\.05)\)"):
        load_results(tmp_path)


def test_an_amp_rerun_does_not_pool_with_fp32_runs(tmp_path):
    store_of(tmp_path, record(config(seed=0)), record(config(seed=1, amp="on")))
    with pytest.raises(UsageError, match=r"speed\.amp"):
        load_results(tmp_path)


def test_seeds_of_one_configuration_pool(tmp_path):
    store_of(tmp_path, *(record(config(seed=s), acc=50.0 + s) for s in range(3)))
    results = load_results(tmp_path)
    assert len(results.scores("last")) == 3


def test_a_failed_run_does_not_block_pooling_and_still_counts_as_failed(tmp_path):
    store_of(tmp_path, record(config(seed=0)), record(config(seed=1)),
             record(config(seed=2, epochs=5), status="failed"))  # before: "different epochs" refused
    results = load_results(tmp_path)
    assert len(results.scores("last")) == 2 and (results.runs["status"] == "failed").sum() == 1


def test_an_old_table_without_config_key_falls_back_and_says_so(tmp_path, capsys):
    store_of(tmp_path, record(config(seed=0, lr=0.05)), record(config(seed=1, lr=0.5)))
    runs = pd.read_csv(tmp_path / "runs.csv", dtype=str, keep_default_na=False)
    runs.drop(columns="config_key").to_csv(tmp_path / "runs.csv", index=False)
    results = load_results(tmp_path)  # today's check: lr is not among CONFIG_KEYS
    assert len(results.scores("last")) == 2
    assert "predates its config_key column" in capsys.readouterr().err


# ------------------------------------------------------------------------------- damaged runs.csv


def damaged(tmp_path, edit):
    store_of(tmp_path, *(record(config(seed=s)) for s in range(3)))
    path = tmp_path / "runs.csv"
    path.write_text(edit(path.read_text()))
    with pytest.raises(UsageError) as caught:
        load_results(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "bench results repair --results" in message
    return message


def test_a_runs_table_truncated_at_a_line_boundary_is_damaged(tmp_path):
    # before: the missing finished runs were shown as "not run" (a warning at most)
    message = damaged(tmp_path, lambda text: "".join(text.splitlines(keepends=True)[:-1]))
    assert "have no row" in message


def test_a_non_numeric_cell_is_damaged(tmp_path):
    def edit(text):
        lines = text.splitlines(keepends=True)
        header = lines[0].rstrip("\n").split(",")
        cells = lines[1].rstrip("\n").split(",")
        cells[header.index("last_acc")] = "oops"
        return "".join([lines[0], ",".join(cells) + "\n", *lines[2:]])

    assert "last_acc" in damaged(tmp_path, edit)


def test_a_cut_off_last_line_is_damaged(tmp_path):
    assert "cut off" in damaged(tmp_path, lambda text: text[:-40])


def test_a_table_of_the_records_loads_with_the_cross_check(tmp_path):
    store_of(tmp_path, *(record(config(seed=s)) for s in range(2)))
    assert len(load_results(tmp_path).runs) == 2
    assert json.loads(next((tmp_path / "runs").glob("*.json")).read_text())["status"] == "done"
