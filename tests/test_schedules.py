import math

import pytest

from bench.config import ScheduleSpec
from bench.errors import UsageError
from bench.schedules import lr_at


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
