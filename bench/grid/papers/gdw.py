"""GDW, Generalized Data Weighting (Chen et al., NeurIPS 2021): its recipes, the grids that mirror
Tables 2, 3, 4, 5 (Clothing1M), 7 (Places-LT) and 8, their layouts, how the paper prints our
methods and the known defects of its numbers. GDW reports mean ± std over 5 seeds of the mean of
the last 5 epochs on CIFAR, and a single run on Clothing1M.
"""
from __future__ import annotations

from bench.core.specs import OptimSpec, ScheduleSpec
from bench.grid.layout import PAPERS, Cell, Column, Defect, Layout, Paper, add_layout, columns
from bench.grid.presets import DEFAULT_RECIPES, PRESETS, Preset, Recipe
from methods.gdw import GDW_CIFAR100

PAPER = "gdw"
PAPERS.add(PAPER, Paper(PAPER, "GDW", defects=(
    Defect(5, None, note=(
        "a single run; the meta set is 'the 7k validation set' without saying how 7k of the 14,313 clean val "
        "images were chosen, nor the LR schedule or how much data an epoch is")),
    Defect(7, None, note="the meta set is not stated (ours: 20 images per class of the Places-LT val list)"),
)))

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

# --- Table 5: Clothing1M ------------------------------------------------------------------------
#: §4.3 and App. E (specs/realworld_data.md §3.4–3.5): ResNet-18 ImageNet-pretrained, 5 epochs, batch 128,
#: SGD 1e-3 / 0.9 / 1e-3, images at 224. ⚠ Not stated, our choices: the schedule (cosine, as GDW's other
#: recipes) and what an epoch is (a full pass over the ~1M noisy training images).
GDW_CLOTHING1M_RECIPE = Recipe(
    backbone="resnet18", epochs=5, batch_size=128, pretrained="imagenet1k_v1",
    optim=OptimSpec(lr=1e-3, momentum=0.9, weight_decay=1e-3), schedule=ScheduleSpec(name="cosine"),
)
DEFAULT_RECIPES.add("clothing1m", GDW_CLOTHING1M_RECIPE)
#: "the 7k validation set" as meta set: 14 classes × 500, drawn class-stratified from the 14,313 clean val
#: images with a fixed seed (which 7k GDW used is not stated)
CLOTHING1M_META = 500
PRESETS.add("gdw-table5", Preset(
    description="GDW Table 5: Clothing1M (real noisy labels, none added), ResNet-18 ImageNet-pretrained, 5 full "
                "epochs, batch 128, lr 1e-3 (cosine: the schedule is not stated), wd 1e-3; meta set 500/class from "
                "the clean val list (the '7k validation set'); GDW with its CIFAR-10 eta_omega; one run, as the paper",
    datasets=("clothing1m",), recipe=GDW_CLOTHING1M_RECIPE, noise="none", imbalances=(1,), noise_rates=(0.0,),
    seeds=(0,), order="lt-noise", meta_per_class=CLOTHING1M_META, methods=("ce", "mwnet", "gdw"),
    source="GDW Table 5",
))
# Not regenerated: Fine-tuning, Co-teaching, GLC, L2RW, INSW, Soft-label, Gen-label (not in the registry).
add_layout(Layout(
    name="gdw-table5", title="GDW Table 5: Clothing1M, ResNet-18 ImageNet-pretrained, 7k clean meta images",
    columns=(Column(Cell("clothing1m", 1.0, "none", 0.0), "Clothing1M", "Accuracy"),),
    paper=PAPER, table=5, paper_names=NAMES, preset="gdw-table5",
))

# --- Table 7: Places-LT -------------------------------------------------------------------------
#: App. D.2 (specs/realworld_data.md §5.3): ResNet-18 ImageNet-pretrained, 10 epochs, batch 64, lr 0.01 cosine,
#: wd 1e-3, images at 224. ⚠ Not stated, our choices: momentum 0.9 (as GDW's other recipes); the meta set,
#: 20 images per class from Places_LT_val.txt (BALMS's meta set, the dataset's meta pool); GDW's eta_omega of
#: CIFAR-100 (1000), its setting for many classes.
GDW_PLACES_LT_RECIPE = Recipe(
    backbone="resnet18", epochs=10, batch_size=64, pretrained="imagenet1k_v1",
    optim=OptimSpec(lr=0.01, momentum=0.9, weight_decay=1e-3), schedule=ScheduleSpec(name="cosine"),
)
DEFAULT_RECIPES.add("places-lt", GDW_PLACES_LT_RECIPE)
PRESETS.add("gdw-table7", Preset(
    description="GDW Table 7: Places-LT (its own long tail, clean labels), ResNet-18 ImageNet-pretrained, 10 epochs, "
                "batch 64, lr 0.01 cosine, wd 1e-3; meta set 20/class from the val list (not stated in the paper); "
                "GDW with its CIFAR-100 eta_omega 1000; one seed",
    datasets=("places-lt",), recipe=GDW_PLACES_LT_RECIPE, noise="none", imbalances=(1,), noise_rates=(0.0,),
    seeds=(0,), order="lt-noise", meta_per_class=20, methods=("mwnet", "gdw"),
    dataset_hparams={"places-lt": {"gdw": GDW_CIFAR100}}, source="GDW Table 7",
))
# Not regenerated: L2RW, INSW (not in the registry).
add_layout(Layout(
    name="gdw-table7", title="GDW Table 7: Places-LT, ResNet-18 ImageNet-pretrained",
    columns=(Column(Cell("places-lt", 1.0, "none", 0.0), "Places-LT", "Accuracy"),),
    paper=PAPER, table=7, paper_names={"mwnet": ("MW-Net",), "gdw": ("GDW",)}, preset="gdw-table7",
))
