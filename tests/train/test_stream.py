import torch

from bench.train.stream import BatchStream


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
