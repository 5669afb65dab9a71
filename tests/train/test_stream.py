import pytest
import torch

from bench.train.stream import BatchStream, balanced_subset


def make_stream(n=10, batch=4, **kw):
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    y = torch.arange(n)
    transform = lambda t, train, generator=None: t.float()  # noqa: E731
    return BatchStream(x, y, batch, transform, torch.Generator().manual_seed(0), **kw)


def test_each_epoch_is_a_permutation_in_batches_with_matching_labels():
    stream = make_stream()
    assert len(stream) == 3
    batches = list(stream)
    assert [len(b.y) for b in batches] == [4, 4, 2]
    seen = torch.cat([b.index for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for b in batches:
        assert torch.equal(b.y, b.index) and torch.equal(b.x[:, 0, 0, 0].long(), b.index)
    assert len(stream.intervals) == 3 and all(t >= 0 for t in stream.intervals)
    assert not torch.equal(seen, torch.cat([b.index for b in stream]))  # reshuffled next epoch


def test_indices_only_for_methods_that_declare_them():
    assert all(b.index is None for b in make_stream(with_index=False))


def test_before_step_sees_every_step():
    calls = []
    list(make_stream(before_step=lambda step, steps: calls.append((step, steps))))
    assert calls == [(0, 3), (1, 3), (2, 3)]


def _scan(order: list[int], y: list[int], cap: int) -> list[int]:
    """DivideMix's Clothing1M draw written as its loop: keep a sample while its class has < cap."""
    kept, counts = [], {}
    for i in order:
        if counts.get(y[i], 0) < cap:
            kept.append(i)
            counts[y[i]] = counts.get(y[i], 0) + 1
    return kept


@pytest.mark.parametrize("among", [None, torch.tensor([0, 2, 3, 5, 7, 8, 9, 11, 12, 13, 14, 17, 19])])
def test_balanced_subset_is_the_scan_of_one_shuffle(among):
    y = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 1, 0])
    got = balanced_subset(y, 9, 3, torch.Generator().manual_seed(4), among)
    pool = torch.arange(len(y)) if among is None else among
    order = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(4))].tolist()
    assert got.tolist() == _scan(order, y.tolist(), 3)
    counts = torch.bincount(y[got], minlength=3)
    assert counts.max() <= 3 and (among is not None or counts.tolist() == [3, 3, 3])


def test_an_epoch_subsample_is_what_the_stream_iterates():
    s = make_stream(n=20, batch=5)
    s.y = torch.arange(20) % 4
    s.subset = balanced_subset(s.y, 8, 4, torch.Generator().manual_seed(0))
    seen = torch.cat([b.index for b in s])
    assert sorted(seen.tolist()) == sorted(s.subset.tolist()) and len(seen) == 8
