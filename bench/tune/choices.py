"""A choices file (`tuning.json`, written by `bench tune`) read and applied to planned runs:
`run grid --hparams-from FILE` runs each method on each cell with the hyperparameters its search chose."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.core.search import RECIPE_KEYS
from bench.grid.presets import cell_text
from bench.train.config import RunConfig
from bench.tune.space import apply_point

#: the file of settings and chosen hyperparameters a search leaves in its results folder
CHOICES_FILE = "tuning.json"


def load_choices(path: Path | str) -> dict[str, Any]:
    """A choices file (`tuning.json`), checked enough to apply (a UsageError names the problem)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"--hparams-from {path}: cannot read it ({exc.strerror or exc}); give the tuning.json "
                         "a `bench tune` wrote") from None
    except ValueError:
        raise UsageError(f"--hparams-from {path}: not JSON; give the tuning.json a `bench tune` wrote") from None
    if not isinstance(data, dict) or not isinstance(data.get("chosen"), list) or not all(
            isinstance(c, dict) and {"method", "dataset", "imbalance", "noise", "noise_rate", "hparams"} <= set(c)
            for c in data["chosen"]):
        raise UsageError(f"--hparams-from {path}: not a choices file (no list 'chosen' of method, cell and "
                         "hparams); give the tuning.json a `bench tune` wrote")
    if not data["chosen"]:
        raise UsageError(f"--hparams-from {path}: no search in it has a finished trial; run `bench tune` to the end")
    return data


def _choice_key(method: str, dataset: str, imbalance: float, noise: str, rate: float) -> tuple:
    return (method, dataset, float(imbalance), noise, float(rate))


def apply_choices(runs: list[RunConfig], choices: dict[str, Any], source: str = "") -> list[RunConfig]:
    """Each run with the chosen hyperparameters of its method and cell (recipe keys on its optimiser); the
    run ids change with them. A run whose method and cell the file has no choice for is refused (one line):
    a grid is never half tuned."""
    table = {_choice_key(c["method"], c["dataset"], c["imbalance"], c["noise"], c["noise_rate"]): c
             for c in choices["chosen"]}
    out = []
    for cfg in runs:
        d = cfg.data
        choice = table.get(_choice_key(cfg.method, d.dataset, d.imbalance, d.noise, d.noise_rate))
        if choice is None:
            raise UsageError(f"--hparams-from {source}: no tuned choice for {cfg.method} on {cell_text(cfg)}; tune it "
                             f"(`bench tune --methods {cfg.method} --cell {cell_text(cfg)}`) or leave it out "
                             "(--methods, --cell)")
        point = {**choice["hparams"], **{k: choice[k] for k in RECIPE_KEYS if choice.get(k) is not None}}
        out.append(apply_point(cfg, point))
    return out
