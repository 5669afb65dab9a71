"""Every registered method, tested automatically (the timm pattern), with exact-value
regression numbers per method (the noisypy pattern) kept in tests/golden/runs/<method>.json.

After a deliberate change to a method's numbers, regenerate with
`python tests/golden/regenerate.py [method ...]` and review the diff.
"""
import json

import pytest
import torch
from helpers import assert_matches_golden, digits_run, golden_numbers

from bench.grid.presets import resolve_hparams
from bench.train.engine import build_method, run_trial
from methods import METHODS, Batch
from noisytail_datasets import build_data


@pytest.mark.parametrize("method", METHODS.names())
def test_short_run_matches_golden_numbers(method):
    assert_matches_golden(method, golden_numbers(method))


@pytest.mark.parametrize("method", METHODS.names())
def test_defaults_are_json_and_documented(method):
    cls = METHODS.get(method)
    json.dumps(cls.defaults)
    assert METHODS.describe(method)


@pytest.mark.parametrize("method", METHODS.names())
def test_state_dict_roundtrip_restores_predictions(method):
    cfg = digits_run(method)
    bundle = build_data(cfg.data)
    make = lambda: build_method(cfg, bundle, torch.device("cpu"), torch.Generator().manual_seed(0))  # noqa: E731
    a = make()
    x = a.ctx.transform(bundle.train_x[:64], train=True, generator=torch.Generator().manual_seed(1))
    a.train_step(Batch(x=x, y=bundle.train_y[:64], index=torch.arange(64)), 0)
    torch.manual_seed(123)  # a differently initialised second instance
    b = make()
    b.load_state_dict(a.state_dict())
    for m in a.modules() + b.modules():
        m.eval()
    probe = a.ctx.transform(bundle.test_x[:32], train=False)
    assert torch.equal(a.predict(probe), b.predict(probe))


@pytest.mark.parametrize("method", METHODS.names())
def test_same_config_gives_identical_runs(method):
    assert golden_numbers(method) == golden_numbers(method)


@pytest.mark.parametrize("method", METHODS.names())
def test_training_never_depends_on_the_clean_labels(method, monkeypatch):
    """Scrambling the hidden clean labels changes diagnostics at most, never what is trained.

    Warm-up phases are shortened as in the `quick` preset so every method's main phase runs.
    """
    import bench.train.engine as engine
    from bench.grid.presets import PRESETS

    hp = resolve_hparams(method, PRESETS.get("quick").hparams_for(method, "digits"))
    cfg = digits_run(method, epochs=2).with_(hparams=hp)
    real_build = engine.build_data

    def scrambled(spec, **kw):
        bundle = real_build(spec, **kw)
        perm = torch.randperm(len(bundle.train_true_y), generator=torch.Generator().manual_seed(5))
        bundle.train_true_y = (bundle.train_true_y[perm] + 1) % bundle.num_classes
        return bundle

    honest = run_trial(cfg)
    monkeypatch.setattr(engine, "build_data", scrambled)
    blind = run_trial(cfg)
    assert honest["status"] == blind["status"] == "done", (honest["error"], blind["error"])
    for a, b in zip(honest["epochs"], blind["epochs"]):
        assert (a["test_acc"], a["train_loss"]) == (b["test_acc"], b["train_loss"])
