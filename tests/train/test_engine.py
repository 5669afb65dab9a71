import dataclasses

import pytest
import torch
from helpers import digits_run

from bench.core.specs import OptimSpec
from bench.train.engine import TrialOptions, build_method, run_trial
from methods import METHODS, MethodContext
from noisytail_datasets import build_data


def test_record_has_history_summary_and_environment():
    rec = run_trial(digits_run(epochs=3))
    assert rec["status"] == "done", rec["error"]
    assert [e["epoch"] for e in rec["epochs"]] == [0, 1, 2]
    s = rec["summary"]
    accs = [e["test_acc"] for e in rec["epochs"]]
    assert s["last_acc"] == accs[-1] and s["best_acc"] == max(accs)
    assert s["last5_acc"] == pytest.approx(sum(accs) / 3)
    assert all(0 <= a <= 100 for a in accs)
    assert s["sec_per_iter"] > 0 and s["sec_per_epoch"] > 0 and s["peak_mem_mb"] > 0
    assert rec["env"]["torch"] == torch.__version__
    assert rec["config"]["data"]["noise"] == "sym"
    assert rec["data"]["train_size"] == sum(rec["data"]["noisy_counts"])


def test_killed_run_resumes_from_checkpoint_to_the_same_numbers(tmp_path):
    cfg = digits_run(epochs=4)
    straight = run_trial(cfg)

    def die_at_epoch_2(row):
        if row["epoch"] == 2:
            raise RuntimeError("simulated kill")

    opts = TrialOptions(checkpoint_dir=tmp_path, checkpoint_every=1)
    killed = run_trial(cfg, opts, report=die_at_epoch_2)
    assert killed["status"] == "failed" and "simulated kill" in killed["error"]
    assert (tmp_path / f"{cfg.run_id}.pt").exists()
    resumed = run_trial(cfg, opts)
    assert resumed["status"] == "done" and resumed["resumed_from_epoch"] == 2
    for key in ("test_acc", "train_loss", "lr"):
        assert [e[key] for e in resumed["epochs"]] == [e[key] for e in straight["epochs"]]
    assert (tmp_path / f"{cfg.run_id}.pt").exists()  # kept: the store deletes it once the record is written


def test_diverging_loss_fails_the_run_with_a_reason():
    rec = run_trial(digits_run(lr=1e12, epochs=3))
    assert rec["status"] == "failed"
    assert "non-finite or diverging" in rec["error"]


def test_bad_data_fails_the_run_instead_of_raising():
    cfg = digits_run()
    cfg = cfg.with_(data=dataclasses.replace(cfg.data, noise="asym"))
    rec = run_trial(cfg)
    assert rec["status"] == "failed" and "asym" in rec["error"]


def test_context_never_carries_clean_labels_and_meta_set_only_on_request():
    names = {f.name for f in dataclasses.fields(MethodContext)}
    assert not any("true" in n or "clean" in n for n in names)
    cfg = digits_run()
    bundle = build_data(cfg.data)
    for name in METHODS:
        cls = METHODS.get(name)
        method = build_method(cfg.with_(method=name, hparams=cls.resolve_hparams(cls.short_run)),
                              bundle, torch.device("cpu"), torch.Generator().manual_seed(0))
        has_meta = method.ctx.meta_x is not None
        assert has_meta == type(method).uses_meta_set
        assert torch.equal(method.ctx.train_y, bundle.train_y)


def test_schedule_reaches_the_optimizer():
    cfg = digits_run(epochs=4).with_(optim=OptimSpec(lr=0.2))
    lrs = [e["lr"] for e in run_trial(cfg)["epochs"]]
    assert lrs[0] == pytest.approx(0.2) and lrs[2] == pytest.approx(0.1)


def test_epoch_samples_trains_each_epoch_on_a_fresh_balanced_draw():
    cfg = digits_run(epochs=2).with_(epoch_samples=100)
    rec = run_trial(cfg)
    assert rec["status"] == "done", rec["error"]
    assert [e["samples"] for e in rec["epochs"]] == [100, 100]
    full = run_trial(digits_run(epochs=1))
    assert full["epochs"][0]["samples"] == len(build_data(cfg.data).train_y) > 100 and full["run_id"] != rec["run_id"]
