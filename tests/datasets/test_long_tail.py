"""Long-tail profile against the table in protocols.md §A.2."""
from noisytail_datasets import long_tail_counts


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
