import math

import pytest

from bench.core.errors import UsageError
from bench.core.specs import ScheduleSpec
from bench.train.schedules import lr_at


def test_cosine_is_per_epoch_and_reaches_half_at_midpoint():
    spec = ScheduleSpec(name="cosine")
    assert lr_at(spec, 0.1, 0, 10) == pytest.approx(0.1)
    assert lr_at(spec, 0.1, 5, 10) == pytest.approx(0.05)
    assert lr_at(spec, 0.1, 5, 10, frac=0.9) == lr_at(spec, 0.1, 5, 10)
    assert lr_at(spec, 0.1, 9, 10) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.9)))


def test_multistep():
    spec = ScheduleSpec(name="multistep", milestones=(80, 100), gamma=0.1)
    assert lr_at(spec, 0.1, 79, 120) == pytest.approx(0.1)
    assert lr_at(spec, 0.1, 80, 120) == pytest.approx(0.01)
    assert lr_at(spec, 0.1, 119, 120) == pytest.approx(0.001)


def test_linear_warmup_follows_mmcv_rule():
    spec = ScheduleSpec(name="constant", warmup_epochs=5, warmup_start=0.1)
    assert lr_at(spec, 0.1, 0, 300) == pytest.approx(0.01)
    assert lr_at(spec, 0.1, 2, 300, frac=0.5) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))
    assert lr_at(spec, 0.1, 5, 300) == pytest.approx(0.1)


def test_unknown_schedule():
    with pytest.raises(UsageError, match="did you mean 'cosine'"):
        lr_at(ScheduleSpec(name="cosin"), 0.1, 0, 10)


def test_cosine_restarts_follow_sgdr_cycles():
    spec = ScheduleSpec(name="cosine-restarts", cycle_epochs=1.0, cycle_mult=2.0, cycle_decay=0.9)
    assert lr_at(spec, 0.1, 0, 127) == pytest.approx(0.1)
    assert lr_at(spec, 0.1, 0, 127, frac=0.5) == pytest.approx(0.05)  # half-way down the first cycle
    assert lr_at(spec, 0.1, 1, 127) == pytest.approx(0.09)  # second cycle (2 epochs) peaks at 0.9
    assert lr_at(spec, 0.1, 2, 127) == pytest.approx(0.045)  # ... and is half-way at epoch 2
    assert lr_at(spec, 0.1, 3, 127) == pytest.approx(0.081)  # third cycle starts at epoch 1+2
    # seven cycles (1+2+...+64 = 127 epochs) end at ~0: FSR's 63,500 iterations at 500 per epoch
    assert lr_at(spec, 0.1, 126, 127, frac=0.999) == pytest.approx(0.0, abs=1e-5)


def test_only_cosine_restarts_changes_within_an_epoch():
    from bench.train.schedules import per_iteration

    assert per_iteration(ScheduleSpec(name="cosine-restarts"))
    assert not any(per_iteration(ScheduleSpec(name=n)) for n in ("cosine", "multistep", "constant"))
