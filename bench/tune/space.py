"""A method's search space as Ray Tune domains, points drawn from it, and a point applied to a run.

A *point* maps search-space keys to values: method hyperparameters, and `lr` / `weight_decay`, which
set the run's optimiser (`bench.core.search.RECIPE_KEYS`). Trial 0 of every search is the method's
defaults (the point of the run as planned); trials 1… are drawn by Ray Tune's own samplers (the
ones `BasicVariantGenerator` uses for random search) from a random state seeded by the search's
seed, the method, the cell and the trial number, so a search draws the same points wherever and
whenever it runs, and a resumed search finds its finished trials by their run ids.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

from bench.core.errors import UsageError
from bench.core.search import RECIPE_KEYS, Choice, Dim, IntUniform, LogUniform, Uniform
from bench.train.config import RunConfig
from methods import METHODS


def space_of(method: str) -> Mapping[str, Dim]:
    """The search space `method` declares (a UsageError when it declares none)."""
    space = METHODS.get(method).search_space
    if not space:
        raise UsageError(f"method '{method}' declares no search space (`search_space` next to its defaults); "
                         "leave it out of --methods")
    return space


def ray_domain(dim: Dim) -> Any:
    """The Ray Tune domain of one dimension."""
    from ray import tune

    if isinstance(dim, LogUniform):
        return tune.loguniform(dim.low, dim.high)
    if isinstance(dim, Uniform):
        return tune.uniform(dim.low, dim.high)
    if isinstance(dim, IntUniform):
        return tune.randint(dim.low, dim.high + 1)  # Ray's upper bound is exclusive
    if isinstance(dim, Choice):
        return tune.choice(list(dim.values))
    raise TypeError(f"not a search dimension: {dim!r}")


def _plain(value: Any) -> Any:
    """A sampled value as a plain Python number (NumPy scalars fail the hyperparameter type checks)."""
    return value.item() if hasattr(value, "item") else value


def seed_of(*parts: Any) -> int:
    """A 32-bit seed from the parts' text (the same on every machine and Python, unlike `hash`)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def draw_point(method: str, seed: int, cell: str, trial: int) -> dict[str, Any]:
    """Trial `trial`'s point of `method`'s space: {} for trial 0 (the defaults), else one draw of every
    dimension (keys in sorted order) from a random state seeded by (seed, method, cell, trial)."""
    import numpy as np

    if trial == 0:
        return {}
    state = np.random.RandomState(seed_of(seed, method, cell, trial))
    space = space_of(method)
    return {key: _plain(ray_domain(space[key]).sample(random_state=state)) for key in sorted(space)}


def apply_point(cfg: RunConfig, point: Mapping[str, Any]) -> RunConfig:
    """`cfg` with the point's recipe keys set on its optimiser and its other keys over its hyperparameters,
    checked by the method's rules (a UsageError names a bad value)."""
    recipe = {k: v for k, v in point.items() if k in RECIPE_KEYS}
    own = {k: v for k, v in point.items() if k not in RECIPE_KEYS}
    method = METHODS.get(cfg.method)
    hparams = method.resolve_hparams(cfg.hparams, own, dataset=cfg.data.dataset)
    method.check_run(hparams, cfg.epochs)
    return cfg.with_(hparams=hparams, optim=dataclasses.replace(cfg.optim, **recipe))


def point_of(cfg: RunConfig, keys: Any) -> dict[str, Any]:
    """The values of search-space `keys` in a run (recipe keys from its optimiser)."""
    return {k: getattr(cfg.optim, k) if k in RECIPE_KEYS else cfg.hparams.get(k) for k in sorted(keys)}
