"""Batch iteration with per-iteration timing, over either data path.

Each epoch draws a permutation from the run's generator and asks the training images
(`methods.base.Images`) for its batches: on the device-resident path they are gathered by index
and augmented in one batched call on the device; on the streaming path
(`noisytail_datasets.streaming`) DataLoader workers decode them ahead. The gap between two
consecutive requests for a batch is one training iteration (data preparation included);
the stream records these gaps, so every method is timed the same way, whatever its loop. A
method that runs its own iterations instead of drawing batches marks each one with `lap`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from bench.train import timing
from methods.base import Batch, Images, TensorImages


def balanced_subset(y: torch.Tensor, total: int, num_classes: int, generator: torch.Generator,
                    among: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of at most `total` training samples, at most total // num_classes per (noisy) class:
    the first ones of each class in a random order (DivideMix's Clothing1M draw: shuffle, then keep a
    sample while its class has fewer than total // num_classes), drawn only `among` these if given."""
    pool = torch.arange(len(y)) if among is None else among.cpu()
    order = pool[torch.randperm(len(pool), generator=generator)]
    labels = y.cpu()[order]
    by_class = torch.sort(labels, stable=True)  # classes in turn, each in the random order
    starts = torch.searchsorted(by_class.values, torch.arange(num_classes))
    rank = torch.empty_like(labels)
    rank[by_class.indices] = torch.arange(len(labels)) - starts[by_class.values]
    return order[rank < total // num_classes].to(y.device)


class BatchStream:
    """Shuffled mini-batches of (x, noisy y, index) over the training set.

    `images` is an `Images`, or a uint8 tensor on the device that `transform` augments."""

    def __init__(
        self,
        images: Images | torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        transform: Callable[..., torch.Tensor] | None,
        generator: torch.Generator,
        before_step: Callable[[int, int], None] | None = None,
        with_index: bool = True,
    ) -> None:
        if isinstance(images, torch.Tensor):
            assert transform is not None, "a tensor of images needs its transform"
            images = TensorImages(images, transform)
        self.images, self.y = images, y
        self.batch_size = batch_size
        self.generator = generator
        self.before_step = before_step
        self.with_index = with_index
        self.device = y.device
        self.intervals: list[float] = []
        #: if set, the epoch iterates only these training indices (in a shuffled order)
        self.subset: torch.Tensor | None = None
        self._last = 0.0

    def start_epoch(self) -> None:
        """Forget the last epoch's intervals and start the clock (right before training)."""
        self.intervals = []
        self._last = timing.now(self.device)

    def lap(self) -> None:
        """Record one iteration a method ran without drawing a batch: the time since the last mark."""
        stamp = timing.now(self.device)
        self.intervals.append(stamp - self._last)
        self._last = stamp

    def __len__(self) -> int:
        size = len(self.y) if self.subset is None else len(self.subset)
        return -(-size // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        self.intervals = []
        if self.subset is None:
            order = torch.randperm(len(self.y), generator=self.generator, device="cpu").to(self.device)
        else:
            perm = torch.randperm(len(self.subset), generator=self.generator, device="cpu")
            order = self.subset.to(self.device)[perm.to(self.device)]
        steps = len(self)
        batches = [order[step * self.batch_size : (step + 1) * self.batch_size] for step in range(steps)]
        images = self.images.iterate(batches, train=True, generator=self.generator)
        self._last = timing.now(self.device)
        for step, index in enumerate(batches):
            if self.before_step is not None:
                self.before_step(step, steps)
            x = next(images)
            yield Batch(x=x, y=self.y[index], index=index if self.with_index else None)
            self.lap()
