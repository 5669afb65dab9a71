"""Long-tail profile against the table in protocols.md §A.2; many / medium / few-shot groups and their accuracies."""
import math

import numpy as np
import pytest

from noisytail_datasets import long_tail_counts
from noisytail_datasets.long_tail import FEW, MANY, MEDIUM, SHOT_GROUPS, SHOT_RULES, shot_accuracies, shot_groups


def test_cifar10_rho100_counts():
    assert long_tail_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_table_totals():
    assert sum(long_tail_counts(5000, 10, 10)) == 20431
    assert sum(long_tail_counts(5000, 10, 200)) == 11203
    assert sum(long_tail_counts(500, 100, 100)) == 10847
    assert sum(long_tail_counts(500, 100, 10)) == 19573
    assert long_tail_counts(500, 100, 100)[-1] == 5


def test_degenerate_cases():
    assert long_tail_counts(7, 1, 100) == [7]
    assert long_tail_counts(7, 4, 1.0) == [7, 7, 7, 7]


# many / medium / few-shot groups (specs/realworld_data.md §5.2); the counts sit on both rules' boundaries
BOUNDARY_COUNTS = [120, 100, 50, 20, 8]


def test_shot_groups_balms_rule_is_strict():
    """BALMS: many if > 100, few if < 20, so 100 and 20 are medium."""
    groups = shot_groups(BOUNDARY_COUNTS)  # "balms" is the default
    assert groups.dtype == np.int64 and groups.tolist() == [MANY, MEDIUM, MEDIUM, MEDIUM, FEW]
    assert shot_groups(BOUNDARY_COUNTS, "balms").tolist() == [0, 1, 1, 1, 2]
    assert shot_groups([101, 99, 21, 19]).tolist() == [0, 1, 1, 2]


def test_shot_groups_oltr_rule_includes_the_boundaries():
    """OLTR: many if >= 100, few if <= 20, so 100 is many and 20 is few."""
    assert shot_groups(BOUNDARY_COUNTS, "oltr").tolist() == [MANY, MANY, MEDIUM, FEW, FEW]
    assert shot_groups([101, 99, 21, 19], "oltr").tolist() == [0, 1, 1, 2]


def test_shot_groups_rejects_an_unknown_rule_and_bad_counts():
    assert SHOT_RULES == ("balms", "oltr") and SHOT_GROUPS == ("many", "medium", "few")
    with pytest.raises(ValueError, match="unknown shot rule 'olrt'.*did you mean 'oltr'"):
        shot_groups(BOUNDARY_COUNTS, "olrt")
    with pytest.raises(ValueError, match="1-D"):
        shot_groups([[120, 8]])


def test_shot_accuracies_average_per_class_accuracies():
    # classes:          0    1    2    3    4    5
    groups = np.array([MANY, MANY, MEDIUM, FEW, FEW, FEW])
    correct = np.array([9, 1, 3, 0, 2, 0])
    total = np.array([10, 4, 4, 5, 2, 0])  # class 5 has no test image
    acc = shot_accuracies(correct, total, groups)
    assert list(acc) == ["many", "medium", "few"]
    # by hand: many (90% + 25%) / 2 = 57.5, not the pooled 10/14 = 71.4%; medium 75%;
    # few (0% + 100%) / 2 = 50, class 5 left out
    assert acc["many"] == pytest.approx(57.5) and acc["medium"] == pytest.approx(75.0)
    assert acc["few"] == pytest.approx(50.0)


def test_shot_accuracies_empty_group_is_nan_and_inputs_are_checked():
    acc = shot_accuracies([1, 2], [2, 2], shot_groups([500, 5]))
    assert acc["many"] == 50.0 and math.isnan(acc["medium"]) and acc["few"] == 100.0
    assert math.isnan(shot_accuracies([0], [0], [FEW])["few"])  # its only class has no test image
    with pytest.raises(ValueError, match="one shape"):
        shot_accuracies([1, 2], [2, 2], [0])
    with pytest.raises(ValueError, match="between 0 and"):
        shot_accuracies([3], [2], [0])
