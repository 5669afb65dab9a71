"""The presets of the real-data and ablation tables: each one's recipe as the specs give it (and our
documented choices where they do not), ablation variants, backbone sweeps, the crop size of a
streamed dataset, and the dry-run plan."""
from __future__ import annotations

import dataclasses
import math

import pytest

from bench.core.errors import UsageError
from bench.grid.layout import LAYOUTS
from bench.grid.presets import (
    PRESETS,
    VARIANTS,
    Preset,
    Variant,
    add_variant,
    base_method,
    describe_recipe,
    expand,
    make_run,
)
from methods import METHODS
from noisytail_datasets import DataSpec

NEW = ("dl-table4", "dl-table8", "dl-table9", "dl-table10", "gdw-table5", "gdw-table7", "famus-table3",
       "famus-table4", "famus-table6", "famus-table7", "famus-supp1", "famus-supp2", "fsr-table5")


def runs_of(preset: str, **where) -> list:
    return [c for c in expand(preset) if all(getattr(c, k, None) == v or getattr(c.data, k, None) == v
                                              for k, v in where.items())]


@pytest.mark.parametrize("name", NEW)
def test_each_new_table_has_a_preset_and_a_layout_that_fit_together(name):
    from bench.nn.backbones import BACKBONES

    preset, layout = PRESETS.get(name), LAYOUTS.get(name)
    assert layout.preset == name and preset.source and preset.description
    runs = expand(name)
    assert len({c.run_id for c in runs}) == len(runs) > 0  # what `bench validate` checks
    assert {c.backbone for c in runs} <= set(BACKBONES.names())
    rows = [*preset.methods, *preset.variants]
    printed = {**layout.paper_names, **(layout.average_rows.names if layout.average_rows else {})}
    assert all(r in printed for r in rows), "every row the preset runs has a published row"
    cells = {(c.data.dataset, c.data.imbalance, c.data.noise, c.data.noise_rate) for c in runs}
    assert {(col.cell.dataset, col.cell.imbalance, col.cell.noise, col.cell.noise_rate) for col in layout.columns} \
        == cells
    for c in runs:
        assert METHODS.get(c.method).resolve_hparams(c.hparams) == c.hparams  # every value resolves


def test_real_world_datasets_use_no_trusted_meta_set_unless_the_table_had_clean_data():
    for name in ("dl-table4", "dl-table8", "famus-table6", "famus-table7", "fsr-table5"):
        assert {c.data.meta_per_class for c in expand(name)} == {0}, name
    assert {c.data.meta_per_class for c in expand("gdw-table5")} == {500}  # 14 × 500 = GDW's "7k"
    assert {c.data.meta_per_class for c in expand("famus-supp1")} == {500}
    assert {c.data.meta_per_class for c in expand("gdw-table7")} == {20}  # the Places-LT val list


def test_mini_webvision_recipes():
    dl = runs_of("dl-table4", method="dynamic_loss")[0]
    assert (dl.backbone, dl.epochs, dl.batch_size, dl.pretrained) == ("inception_resnet_v2", 150, 64, "")
    assert (dl.optim.lr, dl.optim.weight_decay, dl.schedule.name) == (0.02, 1e-4, "cosine")
    assert (dl.hparams["warmup_epochs"], dl.hparams["primary_ratio"], dl.hparams["rank_bins"]) == (1, 0.5, 100)
    assert dl.data.image_size == 0  # the dataset's own 299
    dm = expand("famus-table6")[0]
    assert (dm.method, dm.epochs, dm.batch_size, dm.optim.lr, dm.schedule.milestones) == ("dividemix", 81, 64, 0.01,
                                                                                          (40,))
    assert (dm.hparams["lambda_u"], dm.hparams["alpha"], dm.hparams["mix_batch_size"]) == (0.0, 0.5, 32)
    fsr = expand("fsr-table5")[0]
    assert (fsr.backbone, fsr.pretrained, fsr.batch_size, fsr.epochs) == ("resnet50", "", 128, 127)
    assert (fsr.schedule.name, fsr.schedule.warmup_epochs, fsr.optim.weight_decay) == ("cosine-restarts", 3, 1e-4)
    assert (fsr.hparams["dictionary_size"], fsr.hparams["relabel_weight"], fsr.hparams["meta_start_epoch"]) == \
        (5000, 1.0, 20)


def test_a_preset_sets_the_crop_size_of_a_streamed_dataset_and_it_is_part_of_the_run():
    fsr = expand("fsr-table5")[0]
    assert fsr.data.image_size == 224
    assert "image_size=224" in describe_recipe(fsr)
    assert fsr.with_(data=dataclasses.replace(fsr.data, image_size=0)).run_id != fsr.run_id


def test_clothing1m_and_places_lt_recipes():
    for cfg in expand("gdw-table5"):
        assert (cfg.backbone, cfg.pretrained, cfg.epochs, cfg.batch_size) == ("resnet18", "imagenet1k_v1", 5, 128)
        assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == (1e-3, 0.9, 1e-3)
    assert {c.method for c in expand("gdw-table5")} == {"ce", "mwnet", "gdw"}
    places = {c.method: c for c in expand("gdw-table7")}
    assert (places["gdw"].epochs, places["gdw"].batch_size, places["gdw"].optim.lr) == (10, 64, 0.01)
    assert places["gdw"].hparams["omega_lr"] == 1000.0 and places["gdw"].pretrained == "imagenet1k_v1"
    famus = expand("famus-supp1")[0]
    assert (famus.method, famus.backbone, famus.batch_size, famus.optim.lr, famus.schedule.milestones) == \
        ("mwnet", "resnet50", 32, 0.002, (100,))
    # FaMUS's 1,000 mini-batches of 32 per epoch: a fresh balanced draw of 32,000 each of 150 epochs
    assert (famus.epochs, famus.epoch_samples) == (150, 32_000)
    assert "150ep of 32000 balanced samples" in describe_recipe(famus)


def test_red_mini_imagenet_runs_per_noise_level_with_its_dividemix_settings():
    runs = expand("famus-table7")
    assert {c.data.dataset for c in runs} == {f"red-mini-imagenet-{p}" for p in (20, 40, 60, 80)}
    dm = {c.data.dataset: c.hparams for c in runs if c.method == "dividemix"}
    assert {d: (h["lambda_u"], h["alpha"], h["warmup_epochs"]) for d, h in dm.items()} == {
        "red-mini-imagenet-20": (50.0, 1.0, 30), "red-mini-imagenet-40": (50.0, 1.5, 30),
        "red-mini-imagenet-60": (50.0, 1.5, 30), "red-mini-imagenet-80": (100.0, 2.0, 30)}
    assert {(c.backbone, c.epochs, c.optim.lr) for c in runs} == {("preact_resnet18", 301, 0.02)}


def test_famus_supp2_uses_dividemix_loop_and_the_nearest_lambda_u():
    runs = expand("famus-supp2")
    assert {c.data.noise_sampling for c in runs} == {"exact"} and {c.method for c in runs} == {"dividemix"}
    assert {(c.data.dataset, c.hparams["lambda_u"], c.hparams["warmup_epochs"]) for c in runs} == {
        ("cifar10", 25.0, 10), ("cifar100", 150.0, 30)}


def test_a_backbone_sweep_runs_every_cell_once_per_backbone_with_the_recipe_otherwise_unchanged():
    runs = expand("dl-table8")
    backbones = ("resnet10", "resnet50", "resnet152", "resnext50")
    assert sorted((c.backbone, c.method) for c in runs) == sorted((b, m) for b in backbones
                                                                  for m in ("ce", "balanced_softmax", "dynamic_loss"))
    assert {(c.epochs, c.batch_size, c.optim.lr, c.optim.weight_decay, c.schedule.name, c.pretrained) for c in runs} \
        == {(90, 128, 0.1, 1e-4, "cosine", "")}
    assert len({c.run_id for c in runs}) == 12
    assert PRESETS.get("dl-table8").backbone_list() == backbones
    assert PRESETS.get("dl-table4").backbone_list() == ("inception_resnet_v2",)


def test_variants_run_their_method_with_the_presets_overrides_then_their_own():
    from methods.mwnet import MWNET_WRN

    by_row = {}
    for c in expand("famus-table3", seeds=[0]):
        if c.data.dataset == "cifar10":
            by_row.setdefault(c.method, []).append(c.hparams)
    assert sorted(len(v) for v in by_row.values()) == [1, 3]  # MW-Net, and FaMUS three times
    famus = by_row["famus"]
    assert all({k: h[k] for k in MWNET_WRN} == MWNET_WRN for h in famus)  # the preset's overrides of famus
    assert sorted((h["lambda_r"], h["lambda_g"]) for h in famus) == [(0.0, 0.1), (0.1, 0.0), (0.1, 0.1)]
    naive = expand("dl-table9", methods=["dynamic_loss-naive"], seeds=[0])
    assert {c.method for c in naive} == {"dynamic_loss"} and len(naive) == 10
    assert {(c.hparams["primary_ratio"], c.hparams["meta_ratio"]) for c in naive} == {(0.25, 1.0)}
    # the short-run overrides still come last
    preset = PRESETS.get("dl-table9")
    assert preset.hparams_for("dynamic_loss-vector", "cifar10", short_run=True) == {
        "mlp_depth": 1, "mg_input": "ones", **METHODS.get("dynamic_loss").short_run}


def test_shared_cells_give_the_same_run_ids_as_the_presets_they_extend():
    """Table 9's CE and Dynamic Loss runs are Table 2's; Table 3's MW-Net and FaMUS runs are Table 1's at 60%."""
    table2 = {c.run_id for c in expand("cifar10-n-lt")}
    assert {c.run_id for c in expand("dl-table9", methods=["ce", "dynamic_loss"])} <= table2
    table1 = {c.run_id for c in expand("famus-table1")}
    assert {c.run_id for c in expand("famus-table3", methods=["mwnet", "famus"])} <= table1


def test_variants_are_checked_when_registered():
    with pytest.raises(ValueError, match="does not change"):
        add_variant("famus-same", Variant("famus", {"lambda_r": 0.1}, "FaMUS"))
    with pytest.raises(ValueError, match="hide the method"):
        add_variant("famus", Variant("famus", {"lambda_r": 0.0}, "FaMUS"))
    with pytest.raises(UsageError):
        add_variant("famus-bad", Variant("famus", {"lambda_r": -1.0}, "FaMUS"))
    with pytest.raises(UsageError):
        add_variant("nope-x", Variant("nope", {}, "x"))
    assert "famus-same" not in VARIANTS and base_method("famus-no-lg") == "famus" and base_method("ce") == "ce"
    with pytest.raises(UsageError, match="unknown method"):
        base_method("famus-no-such")


def test_a_preset_without_sweep_or_variants_expands_as_before():
    from bench.grid.presets import QUICK_RECIPE

    preset = Preset(description="t", datasets=("digits",), recipe=QUICK_RECIPE, noise="sym", imbalances=(1,),
                    noise_rates=(0.2,), seeds=(0,), methods=("ce",))
    assert preset.backbone_list() == ("mlp",) and preset.variants == () and preset.image_size == 0


@pytest.mark.parametrize("name", ["dl-table8", "famus-table3", "fsr-table5"])
def test_dry_run_prints_the_recipe_of_every_run(name, capsys, tmp_path):
    from helpers import run_cli

    code, out, _ = run_cli(capsys, "run", "grid", "--preset", name, "--dry-run", "--out", str(tmp_path))
    lines = out.splitlines()
    runs = expand(name)
    assert code == 0 and len(lines) == 1 + 2 * len(runs)
    for cfg in runs:
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [cfg.run_id])
        assert lines[at + 1].strip() == describe_recipe(cfg)


def test_table9_is_laid_out_on_table2s_cells_with_its_averages_from_table9():
    from analysis.reference import table_methods

    layout, table2 = LAYOUTS.get("dl-table9"), LAYOUTS.get("dl-table2")
    assert layout.columns == table2.columns and (layout.paper, layout.table, layout.avg) == ("dynamic_loss", 2, "all")
    rows = layout.average_rows
    assert rows.table == 9 and rows.key[0] == "cifar10" and math.isnan(rows.key[1]) and math.isnan(rows.key[3])
    preset = PRESETS.get("dl-table9")
    assert set(rows.names) == {*preset.methods, *preset.variants}
    printed = table_methods("dynamic_loss", 9)
    assert all(set(names) <= set(printed) for names in rows.names.values())


def test_a_per_epoch_subsample_a_method_would_ignore_is_refused():
    preset = PRESETS.get("famus-supp1")
    with pytest.raises(UsageError, match="builds each epoch from the whole training set"):
        make_run(DataSpec("clothing1m", meta_per_class=500), "dividemix", preset.recipe, 0)
    with pytest.raises(UsageError, match="epoch_samples must be >= 0"):
        make_run(DataSpec("clothing1m", meta_per_class=500), "ce", dataclasses.replace(preset.recipe,
                                                                                        epoch_samples=-1), 0)


@pytest.mark.parametrize("method", ["mwnet", "gdw", "famus"])
def test_a_meta_set_method_without_a_meta_set_is_refused_at_planning(method):
    recipe = PRESETS.get("fsr-table5").recipe
    with pytest.raises(UsageError, match=f"method '{method}' learns from a trusted meta set"):
        make_run(DataSpec("mini-webvision", meta_per_class=0), method, recipe, 0)
    make_run(DataSpec("mini-webvision", meta_per_class=0), "ce", recipe, 0)
