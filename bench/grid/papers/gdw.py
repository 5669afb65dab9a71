"""GDW, Generalized Data Weighting (Chen et al., NeurIPS 2021): its recipe, the grids that mirror
Tables 2, 3, 4 and 8, their layouts and how the paper prints our methods. GDW reports mean ± std
over 5 seeds of the mean of the last 5 epochs.
"""
from __future__ import annotations

from bench.core.specs import OptimSpec, ScheduleSpec
from bench.grid.layout import PAPERS, Layout, Paper, add_layout, columns
from bench.grid.presets import PRESETS, Preset, Recipe

PAPER = "gdw"
PAPERS.add(PAPER, Paper(PAPER, "GDW"))

CIFARS = ("cifar10", "cifar100")
#: MW-Net / GDW meta set: 1000 clean images, i.e. 100 per class on CIFAR-10 and 10 on CIFAR-100
META_1000 = {"cifar10": 100, "cifar100": 10}

#: methods.md §7.2: ResNet-32, batch 100, SGD 0.1 / 0.9 / 5e-4 without Nesterov, cosine per epoch
#: over 80 epochs. η_ω = 1000 on CIFAR-100 is GDW's own CIFAR-100 default.
GDW_RECIPE = Recipe(
    backbone="resnet32", epochs=80, batch_size=100,
    optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4), schedule=ScheduleSpec(name="cosine"),
)
#: MW-Net's and GDW's scripts pad by reflection before the random crop and normalise with MW-Net's
#: constants (methods.md §5.2, §7.2)
MWNET_IMAGES = dict(pad_mode="reflect", normalisation="mwnet")
_COMMON = dict(datasets=CIFARS, recipe=GDW_RECIPE, order="meta-noise-lt", meta_per_class_by_dataset=META_1000,
               seeds=(0, 1, 2, 3, 4), methods=("ce", "mwnet", "gdw"), **MWNET_IMAGES)
#: how Tables 2–4 print our methods
NAMES = {"ce": ("BaseModel",), "mwnet": ("MWNet",), "gdw": ("GDW",)}

PRESETS.add("gdw-table2", Preset(
    description="GDW Table 2: CIFAR-10/100 uniform noise {0, 0.4, 0.6}, ResNet-32, 80 epochs, 5 seeds",
    noise="sym", imbalances=(1,), noise_rates=(0.0, 0.4, 0.6), source="GDW Table 2", **_COMMON,
))
PRESETS.add("gdw-table3", Preset(
    description="GDW Table 3: CIFAR-10/100 flip noise {0, 0.2, 0.4} (MW-Net's pair map), 5 seeds",
    noise="flip", imbalances=(1,), noise_rates=(0.0, 0.2, 0.4), source="GDW Table 3", **_COMMON,
))
for _n, _noise, _rates, _what in ((2, "sym", (0.0, 0.4, 0.6), "uniform noise"),
                                  (3, "flip", (0.0, 0.2, 0.4), "flip noise")):
    add_layout(Layout(
        name=f"gdw-table{_n}", title=f"GDW Table {_n}: CIFAR with {_what}, ResNet-32, mean of the last 5 epochs",
        columns=sum((columns(ds, (1,), _noise, _rates, "{ds}", "{pct}") for ds in CIFARS), ()),
        metrics=("last5",), paper=PAPER, table=_n, paper_names=NAMES, preset=f"gdw-table{_n}",
    ))

PRESETS.add("gdw-table4", Preset(
    description="GDW Table 4: long-tailed CIFAR-10/100 rho {1, 10, 100}, no noise, 5 seeds",
    noise="none", imbalances=(1, 10, 100), noise_rates=(0.0,), source="GDW Table 4", **_COMMON,
))
add_layout(Layout(
    name="gdw-table4", title="GDW Table 4: long-tailed CIFAR (μ = 1/ρ), ResNet-32, mean of the last 5 epochs",
    columns=sum((columns(ds, (1, 10, 100), "none", (0.0,), "{ds}", "μ={mu}") for ds in CIFARS), ()),
    metrics=("last5",), paper=PAPER, table=4, paper_names=NAMES, preset="gdw-table4",
))

PRESETS.add("gdw-table8", Preset(
    description="GDW Table 8: uniform noise {0.4, 0.6} then LT rho {10, 100} (GDW's order), MW-Net vs GDW",
    noise="sym", imbalances=(10, 100), noise_rates=(0.4, 0.6), source="GDW Table 8",
    **{**_COMMON, "methods": ("mwnet", "gdw"), "seeds": (0, 1, 2)},
))
add_layout(Layout(
    name="gdw-table8", title="GDW Table 8: uniform noise then long tail, ResNet-32, mean of the last 5 epochs",
    columns=sum((columns(ds, (10, 100), "sym", (0.4, 0.6), "{ds}", "μ={mu} {pct}", ref_noise="sym-then-lt")
                 for ds in CIFARS), ()),
    metrics=("last5",), paper=PAPER, table=8, paper_names={"mwnet": ("MW-Net",), "gdw": ("GDW",)}, preset="gdw-table8",
))
