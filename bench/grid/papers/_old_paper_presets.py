"""Presets that mirror published tables, each with the recipe of the paper's official code.

`python -m bench run grid --preset X --dry-run` prints every run with its full recipe. Numbers
of the tables are in results/reference/published_results.csv (`python -m bench table
--reference`). Where a paper leaves a choice open, the comment on the preset says what we
chose. Seeds: GDW reports 5 seeds, FaMUS Table 5 and FSR Table 6 three; single-run tables get
3 seeds here so that the table can show a spread.
"""
from __future__ import annotations

from bench.core.specs import OptimSpec, ScheduleSpec
from bench.grid.presets import DL_CIFAR_RECIPE, PRESETS, Preset, Recipe
from methods.dividemix import DIVIDEMIX_ASYM, DIVIDEMIX_CIFAR100, DIVIDEMIX_LAMBDA_U
from methods.dynamic_loss import DYNAMIC_LOSS_CIFAR100
from methods.famus import FAMUS_LT
from methods.fsr import FSR_LT, FSR_LT_NOISE
from methods.gdw import GDW_CIFAR100
from methods.mwnet import MWNET_LT

CIFARS = ("cifar10", "cifar100")
#: MW-Net / GDW meta set: 1000 clean images, i.e. 100 per class on CIFAR-10 and 10 on CIFAR-100
META_1000 = {"cifar10": 100, "cifar100": 10}

#: GDW (methods.md §7.2): ResNet-32, batch 100, SGD 0.1 / 0.9 / 5e-4 without Nesterov, cosine
#: per epoch over 80 epochs.
GDW_RECIPE = Recipe(
    backbone="resnet32", epochs=80, batch_size=100,
    optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4), schedule=ScheduleSpec(name="cosine"),
)
#: FaMUS Table 1 (supplement, methods.md §6.4): WRN-28-10, batch 100, lr 0.05 ÷10 at 18K and 19K
#: iterations, 20K iterations. At 490 iterations per epoch (49,000 training images after the
#: 1000-image meta set) that is 41 epochs with drops after epochs 37 and 39 (36.7 and 38.8).
FAMUS_T1_RECIPE = Recipe(
    backbone="wrn28_10", epochs=41, batch_size=100,
    optim=OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True),
    schedule=ScheduleSpec(name="multistep", milestones=(37, 39), gamma=0.1),
)
#: FaMUS Table 8 / MW-Net LT script (§5.2, §6.4): ResNet-32, batch 100, SGD 0.1 / 0.9 / 5e-4
#: Nesterov, 200 epochs, ÷10 at 160 and 180.
FAMUS_LT_RECIPE = Recipe(
    backbone="resnet32", epochs=200, batch_size=100,
    optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
    schedule=ScheduleSpec(name="multistep", milestones=(160, 180), gamma=0.1),
)
#: FSR noise runs (§8.2): WRN-28-10, batch 100, SGD 0.1 / 0.9, wd 5e-4, cosine with restarts
#: (first cycle 500 iterations = 1 epoch on 50,000 images, cycles ×2 longer and ×0.9 lower),
#: 63,500 iterations = 127 epochs (the end of the 7th cycle).
FSR_NOISE_RECIPE = Recipe(
    backbone="wrn28_10", epochs=127, batch_size=100,
    optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4),
    schedule=ScheduleSpec(name="cosine-restarts", cycle_epochs=1.0, cycle_mult=2.0, cycle_decay=0.9),
)
#: FSR LT and LT+noise scripts (§8.2): ResNet-32, batch 128 (the paper says 100), 200 epochs,
#: lr 0.1 ×0.01 at 160 and again at 180.
FSR_LT_RECIPE = Recipe(
    backbone="resnet32", epochs=200, batch_size=128,
    optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4),
    schedule=ScheduleSpec(name="multistep", milestones=(160, 180), gamma=0.01),
)

# --- GDW (NeurIPS 2021): mean ± std over 5 seeds of the mean of the last 5 epochs ---------------
_GDW_COMMON = dict(
    datasets=CIFARS, recipe=GDW_RECIPE, order="meta-noise-lt", meta_per_class_by_dataset=META_1000,
    seeds=(0, 1, 2, 3, 4), methods=("ce", "mwnet", "gdw"), dataset_hparams={"cifar100": {"gdw": GDW_CIFAR100}},
)
PRESETS.add("gdw-table2", Preset(
    description="GDW Table 2: CIFAR-10/100 uniform noise {0, 0.4, 0.6}, ResNet-32, 80 epochs, 5 seeds",
    noise="sym", imbalances=(1,), noise_rates=(0.0, 0.4, 0.6), source="GDW Table 2", **_GDW_COMMON,
))
PRESETS.add("gdw-table3", Preset(
    description="GDW Table 3: CIFAR-10/100 flip noise {0, 0.2, 0.4} (MW-Net's pair map), 5 seeds",
    noise="flip", imbalances=(1,), noise_rates=(0.0, 0.2, 0.4), source="GDW Table 3", **_GDW_COMMON,
))
PRESETS.add("gdw-table4", Preset(
    description="GDW Table 4: long-tailed CIFAR-10/100 rho {1, 10, 100}, no noise, 5 seeds",
    noise="none", imbalances=(1, 10, 100), noise_rates=(0.0,), source="GDW Table 4", **_GDW_COMMON,
))
PRESETS.add("gdw-table8", Preset(
    description="GDW Table 8: uniform noise {0.4, 0.6} then LT rho {10, 100} (GDW's order), MW-Net vs GDW",
    noise="sym", imbalances=(10, 100), noise_rates=(0.4, 0.6), source="GDW Table 8",
    **{**_GDW_COMMON, "methods": ("mwnet", "gdw"), "seeds": (0, 1, 2)},
))

# --- FaMUS (CVPR 2021) -----------------------------------------------------------------------
PRESETS.add("famus-table1", Preset(
    description="FaMUS Table 1: MW-Net with/without FaMUS, CIFAR-10/100 uniform noise, WRN-28-10, 20K iterations",
    datasets=CIFARS, recipe=FAMUS_T1_RECIPE, noise="sym", imbalances=(1,), noise_rates=(0.2, 0.4, 0.6),
    seeds=(0, 1, 2), order="meta-noise-lt", meta_per_class_by_dataset=META_1000,
    methods=("mwnet", "famus"), source="FaMUS Table 1",
))
PRESETS.add("famus-table8", Preset(
    description="FaMUS Table 8: long-tailed CIFAR-10/100 rho {100, 50, 20, 10}, 10 clean images/class, ResNet-32",
    datasets=CIFARS, recipe=FAMUS_LT_RECIPE, noise="none", imbalances=(100, 50, 20, 10), noise_rates=(0.0,),
    seeds=(0, 1, 2), order="meta-noise-lt", meta_per_class=10, methods=("ce", "mwnet", "famus"),
    method_hparams={"mwnet": MWNET_LT, "famus": {**MWNET_LT, **FAMUS_LT}}, source="FaMUS Table 8",
))

# --- FSR (ICCV 2021): no clean data, so no meta set is carved out ----------------------------------
PRESETS.add("fsr-table1", Preset(
    description="FSR Table 1: CIFAR-10 uniform noise {0, 0.2, 0.4, 0.8}, WRN-28-10, cyclic cosine, 127 epochs",
    datasets=("cifar10",), recipe=FSR_NOISE_RECIPE, noise="sym", imbalances=(1,),
    noise_rates=(0.0, 0.2, 0.4, 0.8), seeds=(0, 1, 2), meta_per_class=0, methods=("ce", "fsr"),
    source="FSR Table 1",
))
PRESETS.add("fsr-table2", Preset(
    description="FSR Table 2: CIFAR-100 uniform noise {0, 0.2, 0.4, 0.8}, WRN-28-10, cyclic cosine, 127 epochs",
    datasets=("cifar100",), recipe=FSR_NOISE_RECIPE, noise="sym", imbalances=(1,),
    noise_rates=(0.0, 0.2, 0.4, 0.8), seeds=(0, 1, 2), meta_per_class=0, methods=("ce", "fsr"),
    source="FSR Table 2",
))
PRESETS.add("fsr-table3", Preset(
    description="FSR Table 3: CIFAR-10 asymmetric noise {0.2, 0.4} (semantic pairs), WRN-28-10, 127 epochs",
    datasets=("cifar10",), recipe=FSR_NOISE_RECIPE, noise="asym", imbalances=(1,),
    noise_rates=(0.2, 0.4), seeds=(0, 1, 2), meta_per_class=0, methods=("ce", "fsr"),
    source="FSR Table 3",
))
PRESETS.add("fsr-table6", Preset(
    description="FSR Table 6: long-tailed CIFAR-10/100 rho {200, 50, 10}, ResNet-32, deferred re-weighting",
    datasets=CIFARS, recipe=FSR_LT_RECIPE, noise="none", imbalances=(200, 50, 10), noise_rates=(0.0,),
    seeds=(0, 1, 2), meta_per_class=0, methods=("ce", "fsr"), method_hparams={"fsr": FSR_LT},
    source="FSR Table 6",
))
PRESETS.add("fsr-table7", Preset(
    description="FSR Table 7: CIFAR-10 LT rho {1, 10, 50, 200} then uniform noise {0.2, 0.4}, ResNet-32",
    datasets=("cifar10",), recipe=FSR_LT_RECIPE, noise="sym", imbalances=(1, 10, 50, 200), noise_rates=(0.2, 0.4),
    seeds=(0, 1, 2), meta_per_class=0, methods=("fsr",), method_hparams={"fsr": FSR_LT_NOISE},
    source="FSR Table 7",
))

# --- Dynamic Loss (TPAMI 2023) Table 7: clean long-tailed CIFAR ----------------------------------
PRESETS.add("dl-table7", Preset(
    description="Dynamic Loss Table 7: clean long-tailed CIFAR-10/100 rho {10, 20, 50, 100}, ResNet-32, 300 epochs",
    datasets=CIFARS, recipe=DL_CIFAR_RECIPE, noise="none", imbalances=(10, 20, 50, 100), noise_rates=(0.0,),
    seeds=(0, 1, 2), meta_per_class=0,
    methods=("ce", "balanced_softmax", "dynamic_loss", "dynamic_loss_bs", "dynamic_loss_la"),
    dataset_hparams={"cifar100": {m: DYNAMIC_LOSS_CIFAR100 for m in ("dynamic_loss", "dynamic_loss_bs", "dynamic_loss_la")}},
    source="Dynamic Loss Table 7",
))


# --- Dynamic Loss Table 5: balanced CIFAR with synthetic noise, DivideMix's recipe -----------------
#: DivideMix (methods.md §4.2): PreAct ResNet-18, SGD 0.02 / 0.9 / 5e-4, ÷10 at epoch 150 of 300,
#: warm-up batch 128 (MixMatch batches are 64 labeled + 64 unlabeled inside the method).
DIVIDEMIX_RECIPE = Recipe(
    backbone="preact_resnet18", epochs=300, batch_size=128,
    optim=OptimSpec(lr=0.02, momentum=0.9, weight_decay=5e-4),
    schedule=ScheduleSpec(name="multistep", milestones=(150,), gamma=0.1),
)


def _dividemix_cells() -> dict[str, dict[str, dict]]:
    """λ_u where the maintainers gave one for a Table 5 cell (else the default 25), and the
    asymmetric-noise options on CIFAR-10's asym columns."""
    cells: dict[str, dict[str, dict]] = {}
    for dataset, table in DIVIDEMIX_LAMBDA_U.items():
        for key, lambda_u in table.items():
            noise, rate = key[:-3], float(key[-3:])
            cells[f"{dataset}/{noise}/{rate:g}"] = {"dividemix": {"lambda_u": lambda_u}}
    for rate in (0.2, 0.4):
        cells[f"cifar10/asym/{rate:g}"] = {"dividemix": DIVIDEMIX_ASYM}
    return cells


PRESETS.add("dl-table5", Preset(
    description="Dynamic Loss Table 5: balanced CIFAR-10/100 sym {0.2, 0.4, 0.6} (+ CIFAR-10 asym {0.2, 0.4}), "
                "PreAct ResNet-18, DivideMix's recipe",
    datasets=CIFARS, recipe=DIVIDEMIX_RECIPE, noise="sym", imbalances=(1,), noise_rates=(0.2, 0.4, 0.6),
    extra_cells={"cifar10": (("asym", 1, 0.2), ("asym", 1, 0.4))}, seeds=(0, 1, 2), meta_per_class=0,
    methods=("ce", "dividemix"), dataset_hparams={"cifar100": {"dividemix": DIVIDEMIX_CIFAR100}},
    cell_hparams=_dividemix_cells(), source="Dynamic Loss Table 5",
))
