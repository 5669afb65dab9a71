"""Presets: per-dataset settings, the published tables' recipes, and the dry-run plan."""
import dataclasses

import pytest

from bench.cli import main
from bench.grid.presets import PRESETS, Preset, describe_recipe, expand
from methods import METHODS


def runs_of(preset, **where):
    return [c for c in expand(preset) if all(getattr(c, k, None) == v or getattr(c.data, k, None) == v
                                              for k, v in where.items())]


def test_dataset_specific_hyperparameters_and_meta_sets():
    gdw10 = runs_of("gdw-table2", method="gdw", dataset="cifar10")
    gdw100 = runs_of("gdw-table2", method="gdw", dataset="cifar100")
    assert {c.hparams["omega_lr"] for c in gdw10} == {100.0}
    assert {c.hparams["omega_lr"] for c in gdw100} == {1000.0}
    assert {c.data.meta_per_class for c in gdw10} == {100} and {c.data.meta_per_class for c in gdw100} == {10}
    assert {c.data.order for c in gdw10} == {"meta-noise-lt"}
    assert {c.hparams["rank_bins"] for c in runs_of("dl-table7", method="dynamic_loss", dataset="cifar100")} == {50}
    assert {c.hparams["rank_bins"] for c in runs_of("dl-table7", method="dynamic_loss", dataset="cifar10")} == {100}


def test_paper_recipes():
    famus = runs_of("famus-table8", method="famus")[0]
    assert famus.hparams["meta_lr"] == 1e-5 and famus.hparams["weight_norm"] == "sum"  # MW-Net LT + FaMUS LT
    assert (famus.schedule.name, famus.schedule.milestones, famus.epochs) == ("multistep", (160, 180), 200)
    fsr = runs_of("fsr-table1", method="fsr")[0]
    assert (fsr.backbone, fsr.schedule.name, fsr.epochs) == ("wrn28_10", "cosine-restarts", 127)
    assert fsr.data.meta_per_class == 0  # no clean data is carved out for FSR
    gdw = runs_of("gdw-table4", method="gdw")[0]
    assert (gdw.epochs, gdw.batch_size, gdw.schedule.name) == (80, 100, "cosine")


@pytest.mark.parametrize("name", PRESETS.names())
def test_every_preset_names_registered_methods_and_a_description(name):
    preset = PRESETS.get(name)
    assert all(m in METHODS for m in preset.methods or ())
    assert PRESETS.describe(name) == preset.description


def test_describe_recipe_shows_changed_hyperparameters_only():
    line = describe_recipe(runs_of("gdw-table2", method="gdw", dataset="cifar100")[0])
    assert "resnet32 80ep batch=100 sgd lr=0.1 mom=0.9 wd=0.0005 cosine" in line
    assert "meta-noise-lt meta=10/class" in line and "omega_lr=1000.0" in line and "omega_clip" not in line
    assert describe_recipe(runs_of("gdw-table2", method="ce")[0]).endswith("| defaults")


def test_dry_run_prints_the_recipe_of_every_run(capsys, tmp_path):
    assert main(["run", "grid", "--preset", "fsr-table6", "--dry-run", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = expand("fsr-table6")
    assert len(lines) == 1 + 2 * len(runs)
    assert sum("multistep [160, 180]x0.01" in line for line in lines) == len(runs)


def test_extra_cells_extend_the_product_for_one_dataset():
    from bench.grid.presets import QUICK_RECIPE

    preset = Preset(description="t", datasets=("cifar10", "cifar100"), recipe=QUICK_RECIPE, noise="sym",
                    imbalances=(1,), noise_rates=(0.2, 0.4), seeds=(0,),
                    extra_cells={"cifar10": (("asym", 1, 0.4), ("sym", 1, 0.2))})
    assert preset.cells("cifar10") == [("sym", 1, 0.2), ("sym", 1, 0.4), ("asym", 1, 0.4)]
    assert preset.cells("cifar100") == [("sym", 1, 0.2), ("sym", 1, 0.4)]


def test_cell_hyperparameters_apply_to_their_cell_only():
    asym = runs_of("dl-table5", method="dividemix", dataset="cifar10", noise="asym")
    sym = runs_of("dl-table5", method="dividemix", dataset="cifar10", noise="sym", noise_rate=0.2)
    assert asym and all(c.hparams["neg_entropy_warmup"] and c.hparams["lambda_u"] == 0.0 for c in asym)
    assert sym and all(not c.hparams["neg_entropy_warmup"] and c.hparams["lambda_u"] == 0.0 for c in sym)
    c100 = runs_of("dl-table5", method="dividemix", dataset="cifar100")
    assert {c.hparams["warmup_epochs"] for c in c100} == {30}
    assert not runs_of("dl-table5", dataset="cifar100", noise="asym")


def test_presets_that_mirror_a_table_use_that_tables_recipe():
    """Issue: FaMUS Table 1 ran MW-Net's WRN script; MW-Net's and GDW's scripts reflect-pad and use
    MW-Net's normalisation; the DL configs normalise with mmcls's constants; DL Table 5 ran
    DivideMix's loop (301 epochs, exactly int(r·N) noisy labels)."""
    from methods.mwnet import MWNET_WRN

    for method in ("mwnet", "famus"):
        for cfg in runs_of("famus-table1", method=method):
            assert {k: cfg.hparams[k] for k in MWNET_WRN} == MWNET_WRN
            assert cfg.hparams["meta_optimizer"] == "sgd" and cfg.hparams["weight_norm"] == "sum"
    for preset in ("famus-table1", "famus-table8", "gdw-table2", "gdw-table3", "gdw-table4", "gdw-table8"):
        assert {(c.data.pad_mode, c.data.normalisation) for c in expand(preset)} == {("reflect", "mwnet")}, preset
    for preset in ("cifar10-n-lt", "cifar100-n-lt", "dl-table7"):
        assert {(c.data.pad_mode, c.data.normalisation) for c in expand(preset)} == {("constant", "mmcls")}, preset
    table5 = expand("dl-table5")
    assert {c.epochs for c in table5} == {301} and {c.data.noise_sampling for c in table5} == {"exact"}
    assert {c.data.noise_sampling for c in expand("cifar10-n-lt")} == {"independent"}
    assert "extrapolated" in PRESETS.get("dl-table5").description
    assert "dynamic_loss_la" not in {c.method for c in expand("dl-table7")}
    assert "dynamic_loss_la" not in {c.method for c in expand("quick")}
    # the protocol choices are in the run id: the same cell with the default pipeline is another run
    cfg = runs_of("gdw-table2", method="gdw")[0]
    plain = cfg.with_(data=dataclasses.replace(cfg.data, pad_mode="constant", normalisation="dataset"))
    assert plain.run_id != cfg.run_id
    assert "pad_mode=reflect normalisation=mwnet" in describe_recipe(cfg)


def test_the_default_run_shows_the_two_problems_apart_and_reaches_every_main_phase():
    from bench.grid.presets import PRESETS, expand
    from methods import METHODS

    runs = expand("default")
    cells = {(cfg.data.imbalance, cfg.data.noise_rate) for cfg in runs}
    assert cells == {(10, 0.0), (1, 0.4), (10, 0.4)}  # long tail alone, noise alone, both
    assert {cfg.seed for cfg in runs} == {0, 1, 2} and {cfg.method for cfg in runs} == set(METHODS.default_names())
    assert not PRESETS.get("default").short_run
    for cfg in runs:  # every warm-up ends with at least three quarters of the run to go
        key = METHODS.get(cfg.method).main_phase_from
        if key is not None:
            assert cfg.hparams[key] <= cfg.epochs // 4, (cfg.method, key)
