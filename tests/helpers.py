"""Shared builders for the tests, and the short exact-value runs kept in tests/golden/runs/.

Every registered method has `<method>.json`: a 2-epoch digits run with its defaults. Methods
whose defaults stay in a warm-up phase that long also have a `PHASE_RUNS` entry that reaches
their main phase. Regenerate after a deliberate change with
`python tests/golden/regenerate.py [name ...]` and review the diff.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from bench.core.specs import OptimSpec, ScheduleSpec
from bench.grid.presets import resolve_hparams
from bench.nn.backbones import ResNet32
from bench.train.config import RunConfig
from bench.train.engine import run_trial
from methods import METHODS
from methods.base import Diagnostics, MethodContext
from methods.famus import FAMUS_CODE
from noisytail_datasets import DataSpec

GOLDEN_RUNS = Path(__file__).parent / "golden" / "runs"


def digits_run(method: str = "ce", epochs: int = 2, lr: float = 0.05, **data) -> RunConfig:
    """A tiny, fast run: digits, MLP, rho=10, 40% symmetric noise unless overridden, with the
    method's short-run overrides (so that a few epochs reach its main phase)."""
    spec = {"dataset": "digits", "imbalance": 10, "noise": "sym", "noise_rate": 0.4, **data}
    return RunConfig(
        data=DataSpec(**spec), method=method, backbone="mlp", epochs=epochs, batch_size=64, seed=0,
        optim=OptimSpec(lr=lr), schedule=ScheduleSpec(name="cosine"),
        hparams=resolve_hparams(method, METHODS.get(method).short_run),
    )


@dataclasses.dataclass(frozen=True)
class PhaseRun:
    """A digits run of `method` for `epochs` with `hparams` over its defaults; `keys` are kept."""

    method: str
    epochs: int
    hparams: dict[str, Any]
    keys: tuple[str, ...]


#: short runs that reach a method's main phase (file name -> run)
PHASE_RUNS: dict[str, PhaseRun] = {
    # one warm-up epoch, then two co-divide + MixMatch epochs
    "dividemix_mixmatch": PhaseRun("dividemix", 3, {"warmup_epochs": 1}, (
        "test_acc", "train_loss", "labeled_a", "labeled_b", "split_precision_a", "split_recall_b")),
    # one warm-up epoch, then two meta-phase epochs
    "dynamic_loss_meta_phase": PhaseRun("dynamic_loss", 3, {"warmup_epochs": 1}, (
        "test_acc", "train_loss", "lc_label_acc", "lc_weight_mean", "meta_set_size", "samples")),
    # re-weighting from the start, with a dictionary small enough for refreshes to matter
    "fsr_meta_phase": PhaseRun("fsr", 3, {"meta_start_epoch": 0, "dictionary_size": 100, "probe_size": 50},
                               ("test_acc", "train_loss", "dict_purity", "zero_weight_pct")),
    # the official-code variant (last stage, per tensor, code losses)
    "famus_code": PhaseRun("famus", 2, FAMUS_CODE, ("test_acc", "train_loss", "famus_active_frac")),
}
#: the look-ahead runs again on the reference route of the meta gradient (methods.bilevel): their
#: numbers were recorded before the jvp route existed and must never move (tests/methods/test_meta_grad.py)
for _name in ("mwnet", "gdw", "famus", "dynamic_loss", "dynamic_loss_bs", "dynamic_loss_la", "famus_code",
              "dynamic_loss_meta_phase"):
    _run = PHASE_RUNS.get(_name) or PhaseRun(_name, 2, {}, ("test_acc", "train_loss"))
    PHASE_RUNS[f"{_name}_unrolled"] = dataclasses.replace(_run, hparams={**_run.hparams, "meta_grad": "unrolled"})


def epoch_series(method: str, epochs: int, hparams: dict[str, Any], keys: tuple[str, ...]) -> dict[str, list]:
    """Per-epoch values of `keys` (-1.0 where an epoch lacks one) from a digits run."""
    cfg = digits_run(method, epochs=epochs)
    rec = run_trial(dataclasses.replace(cfg, hparams=resolve_hparams(method, {**METHODS.get(method).short_run,
                                                                              **hparams})))
    assert rec["status"] == "done", rec["error"]
    return {k: [e.get(k, -1.0) for e in rec["epochs"]] for k in keys}


def golden_numbers(name: str) -> dict[str, list]:
    """The numbers of golden run `name`: a `PHASE_RUNS` entry or a registered method's default run."""
    run = PHASE_RUNS.get(name) or PhaseRun(name, 2, {}, ("test_acc", "train_loss"))
    return epoch_series(run.method, run.epochs, run.hparams, run.keys)


def write_golden(name: str, numbers: dict[str, list]) -> Path:
    path = GOLDEN_RUNS / f"{name}.json"
    path.write_text(json.dumps(numbers, indent=1) + "\n")
    return path


def assert_matches_golden(name: str, got: dict[str, list]) -> None:
    """`got` equals tests/golden/runs/<name>.json to 1e-4, key by key."""
    path = GOLDEN_RUNS / f"{name}.json"
    assert path.exists(), f"no golden numbers for '{name}': run python tests/golden/regenerate.py {name}"
    for key, values in json.loads(path.read_text()).items():
        assert got[key] == pytest.approx(values, abs=1e-4), key


def small_resnet_context(classes: int, meta_repeats: int, seed: int = 0) -> MethodContext:
    """A MethodContext for unit tests of the look-ahead methods on BatchNorm: a one-block-per-stage
    ResNet-32 on random 8×8 images, 64 training labels, `meta_repeats` meta images per class, SGD
    0.1 / 0.9 / 5e-4, a generator seeded with `seed`."""
    gen = torch.Generator().manual_seed(seed)
    train_y = torch.randint(0, classes, (64,), generator=gen)
    meta_y = torch.arange(classes).repeat(meta_repeats)
    return MethodContext(
        num_classes=classes, in_channels=1, image_size=8, epochs=2, batch_size=16, steps_per_epoch=4,
        device=torch.device("cpu"), optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4),
        train_y=train_y, noisy_counts=torch.bincount(train_y, minlength=classes).tolist(),
        model_factory=lambda: ResNet32(1, classes, blocks_per_stage=1),
        transform=lambda t, train=True, generator=None: t.float() / 255.0,
        generator=gen, diagnostics=Diagnostics(train_y),
        meta_x=torch.randint(0, 256, (len(meta_y), 1, 8, 8), dtype=torch.uint8, generator=gen), meta_y=meta_y,
    )


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`bench` with `argv` in this process: (exit code, stdout, stderr); argparse's own exits included."""
    from bench.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


class FixedLogits:
    """A method whose logits for image i are row i of a table (the image holds its own index)."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table

    def modules(self) -> list:
        return []

    def predict_heads(self, x: torch.Tensor):
        return self.table[x[:, 0, 0, 0].long()], {}
