"""Search points: drawn reproducibly from each method's declared space, applied to a run's config."""
import json

import pytest

from bench.core.errors import UsageError
from bench.core.search import RECIPE_KEYS
from bench.grid.presets import expand
from bench.tune.space import apply_point, draw_point, point_of, ray_domain, space_of
from methods import METHODS


@pytest.mark.parametrize("method", METHODS.names())
def test_points_are_reproducible_plain_and_inside_the_space(method):
    space = space_of(method)
    assert draw_point(method, 0, "digits:10:sym:0.4", 0) == {}  # trial 0: the defaults
    points = [draw_point(method, 0, "digits:10:sym:0.4", trial) for trial in range(1, 6)]
    assert points == [draw_point(method, 0, "digits:10:sym:0.4", trial) for trial in range(1, 6)]
    assert points[0] != draw_point(method, 1, "digits:10:sym:0.4", 1)  # another seed, other points
    assert points[0] != draw_point(method, 0, "digits:1:sym:0.4", 1)  # another cell, other points
    for point in points:
        assert set(point) == set(space)
        json.dumps(point)  # plain Python values (NumPy scalars fail the hyperparameter checks)
        for key, value in point.items():
            assert type(value) in (int, float, str, bool) and space[key].contains(value), (key, value)


def test_ray_domains_keep_the_bounds():
    import numpy as np

    from bench.core.search import IntUniform

    domain = ray_domain(IntUniform(2, 4))  # Ray's randint excludes its upper bound: the dim includes it
    state = np.random.RandomState(0)
    assert {int(domain.sample(random_state=state)) for _ in range(200)} == {2, 3, 4}


def test_apply_point_sets_the_optimiser_and_the_hyperparameters():
    cfg = next(c for c in expand("quick", methods=["dal"], seeds=[0]) if c.data.noise_rate > 0)
    tuned = apply_point(cfg, {"lr": 0.02, "weight_decay": 2e-4, "q_start": 0.5, "q_end": 1.7})
    assert (tuned.optim.lr, tuned.optim.weight_decay) == (0.02, 2e-4)
    assert tuned.optim.momentum == cfg.optim.momentum and tuned.hparams["q_start"] == 0.5
    assert {k: v for k, v in tuned.hparams.items() if k not in ("q_start", "q_end")} == {
        k: v for k, v in cfg.hparams.items() if k not in ("q_start", "q_end")}
    assert tuned.run_id != cfg.run_id
    assert point_of(tuned, ["lr", "q_start"]) == {"lr": 0.02, "q_start": 0.5}
    with pytest.raises(UsageError, match="q_start"):
        apply_point(cfg, {"q_start": -1.0})
    assert set(RECIPE_KEYS) <= set(space_of("dal"))
