"""FaMUS, Faster Meta Update Strategy (Xu et al., CVPR 2021): the recipes and grids that mirror
Tables 1 and 8, their layouts and how the paper prints our methods.
"""
from __future__ import annotations

from bench.core.specs import OptimSpec, ScheduleSpec
from bench.grid.layout import PAPERS, Layout, Paper, add_layout, columns
from bench.grid.papers.gdw import CIFARS, META_1000, MWNET_IMAGES
from bench.grid.presets import PRESETS, Preset, Recipe
from methods.famus import FAMUS_LT
from methods.mwnet import MWNET_LT, MWNET_WRN

PAPER = "famus"
PAPERS.add(PAPER, Paper(PAPER, "FaMUS"))

#: Table 1 (supplement, methods.md §6.4): WRN-28-10, batch 100, lr 0.05 ÷10 at 18K and 19K
#: iterations, 20K iterations. At 490 iterations per epoch (49,000 training images after the
#: 1000-image meta set) that is 41 epochs with drops after epochs 37 and 39 (36.7 and 38.8).
FAMUS_T1_RECIPE = Recipe(
    backbone="wrn28_10", epochs=41, batch_size=100,
    optim=OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True),
    schedule=ScheduleSpec(name="multistep", milestones=(37, 39), gamma=0.1),
)
#: Table 8 / MW-Net's LT script (§5.2, §6.4): ResNet-32, batch 100, SGD 0.1 / 0.9 / 5e-4 Nesterov,
#: 200 epochs, ÷10 at 160 and 180.
FAMUS_LT_RECIPE = Recipe(
    backbone="resnet32", epochs=200, batch_size=100,
    optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
    schedule=ScheduleSpec(name="multistep", milestones=(160, 180), gamma=0.1),
)

# Table 1 ran MW-Net's WRN-28-10 script (`train_WRN-28-10_Meta_PGC.py`), so both rows use its V
# optimiser, Σv normalisation and fresh meta batches (MWNET_WRN), and its image pipeline.
PRESETS.add("famus-table1", Preset(
    description="FaMUS Table 1: MW-Net with/without FaMUS, CIFAR-10/100 uniform noise, WRN-28-10, 20K iterations, "
                "MW-Net's WRN script",
    datasets=CIFARS, recipe=FAMUS_T1_RECIPE, noise="sym", imbalances=(1,), noise_rates=(0.2, 0.4, 0.6),
    seeds=(0, 1, 2), order="meta-noise-lt", meta_per_class_by_dataset=META_1000,
    methods=("mwnet", "famus"), method_hparams={"mwnet": MWNET_WRN, "famus": MWNET_WRN},
    source="FaMUS Table 1", **MWNET_IMAGES,
))
add_layout(Layout(
    name="famus-table1", title="FaMUS Table 1: MW-Net with and without FaMUS, uniform noise, WRN-28-10, best epoch",
    columns=sum((columns(ds, (1,), "sym", (0.2, 0.4, 0.6), "{ds}", "{pct}") for ds in CIFARS), ()),
    metrics=("best",), paper=PAPER, table=1, time_column=True, preset="famus-table1",
    paper_names={"mwnet": ("MW-Net",), "famus": ("MW-Net + FaMUS",)},
))

PRESETS.add("famus-table8", Preset(
    description="FaMUS Table 8: long-tailed CIFAR-10/100 rho {100, 50, 20, 10}, 10 clean images/class, ResNet-32",
    datasets=CIFARS, recipe=FAMUS_LT_RECIPE, noise="none", imbalances=(100, 50, 20, 10), noise_rates=(0.0,),
    seeds=(0, 1, 2), order="meta-noise-lt", meta_per_class=10, methods=("ce", "mwnet", "famus"),
    method_hparams={"mwnet": MWNET_LT, "famus": {**MWNET_LT, **FAMUS_LT}}, source="FaMUS Table 8", **MWNET_IMAGES,
))
add_layout(Layout(
    name="famus-table8", title="FaMUS Table 8: clean long-tailed CIFAR, ResNet-32",
    columns=sum((columns(ds, (100, 50, 20, 10), "none", (0.0,), "{ds}", "ρ={rho}") for ds in CIFARS), ()),
    paper=PAPER, table=8, preset="famus-table8",
    paper_names={"ce": ("CE loss",), "mwnet": ("MW-Net with CE loss",), "famus": ("MW-Net with CE loss + FaMUS",)},
))
