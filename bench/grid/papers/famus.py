"""FaMUS, Faster Meta Update Strategy (Xu et al., CVPR 2021): the recipes and grids that mirror
Tables 1, 3 and 4 (ablations), 6 (mini-WebVision), 7 (Red Mini-ImageNet), 8 and supplementary
Tables 1 (Clothing1M) and 2 (stored as tables 101 and 102), their layouts, how the paper prints our
methods and the known defects of its numbers.

FaMUS's own rows in Tables 5–7 and the supplementary tables come from FaMUS on DivideMix with a GMM
pseudo-clean meta set, which the registry does not have (our `famus` is MW-Net + FaMUS on a clean
meta set): those presets run the rows we can (CE, DivideMix, MW-Net), and each layout's comment
names the rows not regenerated.
"""
from __future__ import annotations

from bench.core.specs import OptimSpec, ScheduleSpec
from bench.grid.layout import PAPERS, Cell, Column, Defect, Layout, Paper, add_layout, columns
from bench.grid.papers.dynamic_loss import DIVIDEMIX_RECIPE, webvision_columns
from bench.grid.papers.gdw import CIFARS, CLOTHING1M_META, META_1000, MWNET_IMAGES
from bench.grid.presets import DEFAULT_RECIPES, PRESETS, Preset, Recipe, Variant, add_variant
from methods.famus import FAMUS_LT
from methods.mwnet import MWNET_LT, MWNET_WRN
from noisytail_datasets import DATASETS

PAPER = "famus"
PAPERS.add(PAPER, Paper(PAPER, "FaMUS", defects=(
    Defect(3, "L_c + L_g", note=(
        "rows 2 and 3 of Table 3 are garbled in the paper's text layers; which of L_r and L_g each one lacks "
        "was read from the rendered PDF")),
    Defect(3, "L_c + L_r", note=(
        "rows 2 and 3 of Table 3 are garbled in the paper's text layers; which of L_r and L_g each one lacks "
        "was read from the rendered PDF")),
    Defect(6, "DivideMix", note=(
        "the DivideMix row is DivideMix's own published number (its recipe), cited; "
        "Dynamic Loss Table 4 cites the same")),
    Defect(7, None, note=(
        "the baselines were re-run by FaMUS with their CIFAR-100 code; their red-noise hyperparameters are not "
        "given and the metric (last or best) is not stated")),
    Defect(101, "MW-Net", note=(
        "73.72 is the number the MW-Net paper reports on Clothing1M (its clean 7k validation images as meta set), "
        "so this row appears cited rather than re-run under the table's recipe")),
    Defect(102, "DivideMix", note=(
        "differs from FaMUS Table 5's DivideMix row (94.90/94.30/75.20/72.00, cited from DivideMix)")),
)))

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

# --- Tables 3 and 4: ablations of MW-Net + FaMUS at 60% uniform noise (Table 1's recipe) -----------
#: Table 3's middle rows: one of the two extra meta-loss terms switched off (λ = 0). Which row lacks which
#: term was read from the rendered PDF (the text layers are garbled; see the Table 3 defects).
add_variant("famus-no-lr", Variant("famus", {"lambda_r": 0.0}, "FaMUS without L_r",
                                   "MW-Net + FaMUS without the layer-count loss L_r (FaMUS Table 3 'L_c + L_g')"))
add_variant("famus-no-lg", Variant("famus", {"lambda_g": 0.0}, "FaMUS without L_g",
                                   "MW-Net + FaMUS without the gradient-matching loss L_g (FaMUS Table 3 'L_c + L_r')"))
_T1_COMMON = dict(recipe=FAMUS_T1_RECIPE, noise="sym", imbalances=(1,), noise_rates=(0.6,), seeds=(0, 1, 2),
                  order="meta-noise-lt", meta_per_class_by_dataset=META_1000, **MWNET_IMAGES)
PRESETS.add("famus-table3", Preset(
    description="FaMUS Table 3: loss-term ablation of MW-Net + FaMUS (L_c alone = MW-Net; without L_r; without L_g; "
                "all three), CIFAR-10/100 60% uniform noise, Table 1's WRN-28-10 recipe and MW-Net script",
    datasets=CIFARS, methods=("mwnet", "famus"), variants=("famus-no-lr", "famus-no-lg"),
    method_hparams={"mwnet": MWNET_WRN, "famus": MWNET_WRN}, source="FaMUS Table 3", **_T1_COMMON,
))
add_layout(Layout(
    name="famus-table3", title="FaMUS Table 3: meta-loss terms of MW-Net + FaMUS, 60% uniform noise, WRN-28-10, "
                               "best epoch",
    columns=sum((columns(ds, (1,), "sym", (0.6,), "{ds}", "{pct}") for ds in CIFARS), ()),
    metrics=("best",), paper=PAPER, table=3, time_column=True, preset="famus-table3",
    paper_names={"mwnet": ("L_c",), "famus": ("L_c + L_r + L_g",), "famus-no-lr": ("L_c + L_g",),
                 "famus-no-lg": ("L_c + L_r",)},
))
PRESETS.add("famus-table4", Preset(
    description="FaMUS Table 4 (the rows our FaMUS expresses): MW-Net and MW-Net + FaMUS (K = 4), CIFAR-100 60% "
                "uniform noise, Table 1's WRN-28-10 recipe and MW-Net script",
    datasets=("cifar100",), methods=("mwnet", "famus"), method_hparams={"mwnet": MWNET_WRN, "famus": MWNET_WRN},
    source="FaMUS Table 4", **_T1_COMMON,
))
# Not regenerated: Pre-specified Block b = 4/8/12 and Random Layers s = 4/8/16 (our FaMUS has no
# hyperparameter for a fixed block or a random subset of layers; `forced_gates` is a test hook).
add_layout(Layout(
    name="famus-table4", title="FaMUS Table 4: layer sampling strategies, CIFAR-100 60% uniform noise, WRN-28-10, "
                               "best epoch",
    columns=columns("cifar100", (1,), "sym", (0.6,), "{ds}", "{pct}"),
    metrics=("best",), paper=PAPER, table=4, time_column=True, preset="famus-table4",
    paper_names={"mwnet": ("MW-Net",), "famus": ("FaMUS (K = 4)",)},
))

# --- Table 6: mini-WebVision (IRV2) ---------------------------------------------------------------
#: The only row the registry produces is DivideMix's, a number FaMUS cites from the DivideMix paper, so the
#: preset runs DivideMix's own WebVision recipe (specs/realworld_data.md §4.4, DivideMix `Train_webvision.py`):
#: Inception-ResNet-v2 from scratch, 80 epochs after 1 warm-up epoch (the code's 81), lr 0.01 ÷10 at 40, SGD
#: momentum 0.9, wd 5e-4; warm-up batch 64, MixMatch batches 32 + 32, lambda_u 0, mixup alpha 0.5.
DIVIDEMIX_WEBVISION_RECIPE = Recipe(
    backbone="inception_resnet_v2", epochs=81, batch_size=64,
    optim=OptimSpec(lr=0.01, momentum=0.9, weight_decay=5e-4),
    schedule=ScheduleSpec(name="multistep", milestones=(40,), gamma=0.1),
)
DIVIDEMIX_WEBVISION = {"warmup_epochs": 1, "lambda_u": 0.0, "alpha": 0.5, "mix_batch_size": 32}
PRESETS.add("famus-table6", Preset(
    description="FaMUS Table 6 (its DivideMix row, cited from DivideMix): mini-WebVision, DivideMix's own recipe "
                "(Inception-ResNet-v2 from scratch, 81 epochs, lr 0.01 ÷10 at 40, batch 64/32, lambda_u 0); "
                "WebVision and ImageNet val top-1/top-5; one seed",
    datasets=("mini-webvision",), recipe=DIVIDEMIX_WEBVISION_RECIPE, noise="none", imbalances=(1,),
    noise_rates=(0.0,), seeds=(0,), order="lt-noise", meta_per_class=0, methods=("dividemix",),
    method_hparams={"dividemix": DIVIDEMIX_WEBVISION}, source="FaMUS Table 6",
))
# Not regenerated: F-correction, Decoupling, D2L, MentorNet, Co-teaching, Iterative-CV, MentorMix (not in the
# registry), MW-Net (FaMUS does not say which clean or pseudo-clean meta set it used; mini-WebVision has no
# clean training labels) and Ours (FaMUS on DivideMix with a pseudo-clean meta set, not our MW-Net + FaMUS).
add_layout(Layout(
    name="famus-table6", title="FaMUS Table 6: mini-WebVision, Inception-ResNet-v2, WebVision and ImageNet val "
                               "top-1/top-5",
    columns=webvision_columns(), metrics=("last", "best"), paper=PAPER, table=6, preset="famus-table6",
    paper_names={"dividemix": ("DivideMix",)},
))

# --- Table 7: Red Mini-ImageNet (CNWL web noise), 32×32 -------------------------------------------
#: FaMUS re-ran the baselines "with their official CIFAR-100 code on 32×32 data" (supp. App. E): DivideMix's
#: CIFAR recipe (PreAct ResNet-18, lr 0.02 ÷10 at 150, 301 epochs, wd 5e-4, warm-up batch 128, MixMatch
#: 64 + 64) for both rows. ⚠ DivideMix's red-noise settings are given nowhere; ours are those of FaMUS's own
#: DivideMix-based CNWL script (run_famus.sh): 30 warm-up epochs, lambda_u 50 (100 at 80%), mixup alpha 1.0,
#: 1.5, 1.5, 2.0 at 20, 40, 60, 80%.
RED_LEVELS = (20, 40, 60, 80)
RED_DIVIDEMIX = {20: {"lambda_u": 50.0, "alpha": 1.0}, 40: {"lambda_u": 50.0, "alpha": 1.5},
                 60: {"lambda_u": 50.0, "alpha": 1.5}, 80: {"lambda_u": 100.0, "alpha": 2.0}}
for _name in DATASETS.names():
    if _name.startswith("red-mini-imagenet-"):
        DEFAULT_RECIPES.add(_name, DIVIDEMIX_RECIPE)
PRESETS.add("famus-table7", Preset(
    description="FaMUS Table 7 (its CE and DivideMix rows): Red Mini-ImageNet 20/40/60/80% web noise at 32x32, "
                "PreAct ResNet-18, DivideMix's CIFAR recipe (lr 0.02 ÷10 at 150, 301 epochs); DivideMix with 30 "
                "warm-up epochs and FaMUS's CNWL lambda_u/alpha (its red-noise values are not given)",
    datasets=tuple(f"red-mini-imagenet-{p}" for p in RED_LEVELS), recipe=DIVIDEMIX_RECIPE, noise="none",
    imbalances=(1,), noise_rates=(0.0,), seeds=(0, 1, 2), order="lt-noise",
    meta_per_class=0,  # no clean training labels
    methods=("ce", "dividemix"), method_hparams={"dividemix": {"warmup_epochs": 30}},
    dataset_hparams={f"red-mini-imagenet-{p}": {"dividemix": RED_DIVIDEMIX[p]} for p in RED_LEVELS},
    source="FaMUS Table 7",
))
# Not regenerated: Mixup, MentorMix (not in the registry) and Ours (FaMUS on DivideMix with a pseudo-clean
# meta set; our FaMUS is MW-Net + FaMUS and needs a clean meta set, which Red Mini-ImageNet lacks).
add_layout(Layout(
    name="famus-table7", title="FaMUS Table 7: Red Mini-ImageNet (CNWL web noise), 32×32, PreAct ResNet-18",
    columns=tuple(Column(Cell(f"red-mini-imagenet-{p}", 1.0, "none", 0.0), "Red Mini-ImageNet", f"{p}%")
                  for p in RED_LEVELS),
    avg="all", paper=PAPER, table=7, preset="famus-table7",
    paper_names={"ce": ("Cross-entropy",), "dividemix": ("DivideMix",)},
))

# --- Supplementary Table 1 (stored as 101): Clothing1M, ResNet-50 ---------------------------------
#: supp. App. E (specs/realworld_data.md §3.5): ResNet-50, batch 32, lr 0.002 ÷10 at "epoch" 100 of 150, wd 1e-3,
#: SGD momentum 0.9, where an epoch is 1,000 mini-batches (32,000 images). ⚠ Our choices: ImageNet-pretrained
#: weights (init not stated; DivideMix's and MW-Net's Clothing1M nets are); FaMUS's 150 epochs of 1,000 mini-batches
#: of 32 as 150 epochs of a fresh class-balanced draw of 32,000 noisy images (`epoch_samples`), ÷10 at epoch 100;
#: MW-Net's meta set, 500 clean val images per class (GDW's "7k"; the MW-Net row is MW-Net's own number).
FAMUS_CLOTHING1M_RECIPE = Recipe(
    backbone="resnet50", epochs=150, batch_size=32, pretrained="imagenet1k_v1",
    optim=OptimSpec(lr=0.002, momentum=0.9, weight_decay=1e-3),
    schedule=ScheduleSpec(name="multistep", milestones=(100,), gamma=0.1), epoch_samples=32_000,
)
PRESETS.add("famus-supp1", Preset(
    description="FaMUS supplementary Table 1 (its MW-Net row): Clothing1M, ResNet-50 ImageNet-pretrained (init not "
                "stated), batch 32, lr 0.002, wd 1e-3, 150 epochs of 1,000 mini-batches (a fresh class-balanced draw "
                "of 32,000 noisy images each), ÷10 at 100; meta set 500 clean val images per class; one seed",
    datasets=("clothing1m",), recipe=FAMUS_CLOTHING1M_RECIPE, noise="none", imbalances=(1,), noise_rates=(0.0,),
    seeds=(0,), order="lt-noise", meta_per_class=CLOTHING1M_META, methods=("mwnet",),
    source="FaMUS supplementary Table 1",
))
# Not regenerated: F-correction, JoCoR, M-correction, MLC, Joint-Optim, MLNT, P-correction, MentorMix (not in the
# registry) and Ours (FaMUS on DivideMix with a pseudo-clean meta set).
add_layout(Layout(
    name="famus-supp1", title="FaMUS supplementary Table 1: Clothing1M, ResNet-50",
    columns=(Column(Cell("clothing1m", 1.0, "none", 0.0), "Clothing1M", "Accuracy"),),
    paper=PAPER, table=101, preset="famus-supp1", paper_names={"mwnet": ("MW-Net",)},
))

# --- Supplementary Table 2 (stored as 102): CIFAR, uniform noise, PreAct ResNet-18 ----------------
#: the DivideMix row under DivideMix's CIFAR recipe and exact-count noise (as dl-table5). ⚠ lambda_u for 40% and
#: 60% is not among DivideMix's published settings: the nearest (50%) is used, 25 on CIFAR-10, 150 on CIFAR-100.
_SUPP2_LAMBDA_U = {"cifar10": 25.0, "cifar100": 150.0}
PRESETS.add("famus-supp2", Preset(
    description="FaMUS supplementary Table 2 (its DivideMix row): CIFAR-10/100 uniform noise {0.4, 0.6}, PreAct "
                "ResNet-18, DivideMix's recipe and exact-count noise; lambda_u of the nearest published setting "
                "(50%): 25 on CIFAR-10, 150 on CIFAR-100; 3 seeds, as the paper",
    datasets=CIFARS, recipe=DIVIDEMIX_RECIPE, noise="sym", imbalances=(1,), noise_rates=(0.4, 0.6), seeds=(0, 1, 2),
    order="lt-noise", meta_per_class=0, methods=("dividemix",), noise_sampling="exact",
    dataset_hparams={ds: {"dividemix": {"lambda_u": lam}} for ds, lam in _SUPP2_LAMBDA_U.items()},
    source="FaMUS supplementary Table 2",
))
# Not regenerated: MW-Net + Pseudo-clean (MW-Net with a GMM pseudo-clean meta set; ours needs a clean one) and Ours.
add_layout(Layout(
    name="famus-supp2", title="FaMUS supplementary Table 2: CIFAR with uniform noise, PreAct ResNet-18",
    columns=sum((columns(ds, (1,), "sym", (0.4, 0.6), "{ds}", "{pct}") for ds in CIFARS), ()),
    paper=PAPER, table=102, preset="famus-supp2", paper_names={"dividemix": ("DivideMix",)},
))
