"""The method registry: what a method declares on its class is all the harness needs.

A method defined in a module outside this repository's `methods/` folder, with no other edit, is
listed, named, coloured, grouped and runnable; the registry refuses a method that would be shown
like another one.
"""
from __future__ import annotations

import importlib
import sys
import textwrap

import pandas as pd
import pytest

from analysis.style import display_name, method_family, method_markers, method_order, method_palette
from bench.cli import main
from bench.core.errors import UsageError
from bench.grid.presets import PRESETS, expand, resolve_hparams
from methods import METHODS
from methods.base import Method

PLUGIN = '''
import torch.nn.functional as F

from bench.core.hparams import Range
from methods.base import Method
from methods.registry import METHODS


@METHODS.register("ce_smooth", "cross-entropy with label smoothing (a method added in one file)")
class SmoothCE(Method):
    display_name = "CE + smoothing"
    colour = "#123456"
    order = 5
    family = "robust loss"
    defaults = {"smoothing": 0.1}
    hparam_rules = {"smoothing": Range(ge=0, lt=1)}
    dataset_defaults = {"digits": {"smoothing": 0.2}}

    def loss(self, logits, y, epoch):
        return F.cross_entropy(logits, y, reduction="none", label_smoothing=self.hp["smoothing"])
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Registers `ce_smooth` from a module in a temporary folder; the registry is restored after."""
    (tmp_path / "plugin_method.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    monkeypatch.setattr(METHODS, "_descriptions", dict(METHODS._descriptions))
    module = importlib.import_module("plugin_method")
    yield module.SmoothCE
    sys.modules.pop("plugin_method", None)


def test_a_method_in_one_file_is_listed_named_coloured_and_runnable(plugin, capsys, tmp_path):
    assert METHODS.names().index("ce_smooth") == 1  # order 5: right after the baseline
    assert main(["ls", "methods"]) == 0
    assert "ce_smooth" in capsys.readouterr().out
    assert display_name("ce_smooth") == "CE + smoothing" and method_family("ce_smooth") == "robust loss"
    assert method_palette(["ce", "ce_smooth"])["ce_smooth"] == pytest.approx((0x12 / 255, 0x34 / 255, 0x56 / 255))
    assert method_markers(["dal", "ce_smooth"])["ce_smooth"] == method_markers(["dal"])["dal"]  # same family
    assert method_order(["dal", "ce_smooth", "ce"]) == ["ce", "ce_smooth", "dal"]
    assert "ce_smooth" in {c.method for c in expand("quick")}  # generic grids run every registered method
    out = tmp_path / "one"
    assert main(["run", "one", "--method", "ce_smooth", "--dataset", "digits", "--epochs", "1", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert runs.method.tolist() == ["ce_smooth"] and runs.status.tolist() == ["done"]
    assert '"smoothing": 0.2' in runs.hparams[0]  # its digits default


def test_registration_refuses_a_method_shown_like_another(monkeypatch):
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    monkeypatch.setattr(METHODS, "_descriptions", dict(METHODS._descriptions))

    class Copy(METHODS.get("gdw")):  # inherits GDW's display name and colour
        pass

    with pytest.raises(ValueError, match="display name"):
        METHODS.add("gdw_copy", Copy)

    class SecondBaseline(Method):
        display_name = "Another baseline"
        is_baseline = True

    with pytest.raises(ValueError, match="baseline"):
        METHODS.add("base2", SecondBaseline)


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_declares_how_it_is_shown(method):
    cls = METHODS.get(method)
    assert {"display_name", "colour", "order"} <= set(vars(cls)), "declare them on the class itself"
    assert cls.family and cls.family != "other"
    if cls.main_phase_from:
        assert cls.main_phase_from in cls.defaults and cls.main_phase_from in cls.short_run
    for dataset, overrides in cls.dataset_defaults.items():
        cls.resolve_hparams(dataset=dataset)  # every declared value passes the method's rules
        assert set(overrides) <= set(cls.defaults)


def test_exactly_one_baseline():
    assert METHODS.baseline() == "ce"
    assert [m for m in METHODS.names() if METHODS.get(m).is_baseline] == ["ce"]


def test_dataset_defaults_apply_wherever_a_run_is_planned():
    """`run one` and the grids resolve a method on a dataset the same way (e.g. GDW on CIFAR-100)."""
    from bench.grid.run import OneRequest, plan_one
    from noisytail_datasets import DataSpec

    one = plan_one(OneRequest(method="gdw", data=DataSpec(dataset="cifar100", meta_per_class=10)))
    grid = [c for c in expand("gdw-table2") if c.method == "gdw" and c.data.dataset == "cifar100"]
    assert one.hparams["omega_lr"] == 1000.0 == grid[0].hparams["omega_lr"]
    assert plan_one(OneRequest(method="gdw", data=DataSpec(dataset="cifar10"))).hparams["omega_lr"] == 100.0
    assert resolve_hparams("dynamic_loss_la", dataset="cifar100")["rank_bins"] == 50  # inherited by the variants
    assert resolve_hparams("dividemix", {"warmup_epochs": 3}, dataset="cifar100")["warmup_epochs"] == 3  # user wins


def test_short_runs_reach_the_main_phase_in_the_quick_grid():
    quick = PRESETS.get("quick")
    for method in METHODS.names():
        cls = METHODS.get(method)
        hp = resolve_hparams(method, quick.hparams_for(method, "digits"))
        if cls.main_phase_from:
            assert hp[cls.main_phase_from] < quick.recipe.epochs, method


@pytest.mark.parametrize("overrides,message", [
    ({"bn": "foo"}, "bn must be one of 'scratch', 'real'"),
    ({"meta_lr": -1.0}, "meta_lr must be > 0"),
    ({"meta_batch_size": 2.5}, "meta_batch_size must be an integer"),
    ({"detach_loss_input": "yes"}, "detach_loss_input must be true or false"),
    ({"meta_lr": float("nan")}, "meta_lr must be a number"),
    ({"wieght_norm": "sum"}, "did you mean 'weight_norm'"),
])
def test_bad_hyperparameters_are_refused_when_planned(overrides, message):
    with pytest.raises(UsageError, match=message):
        resolve_hparams("mwnet", overrides)
