"""Device-resident batch iteration with per-iteration timing.

Each epoch draws a permutation from the run's generator, gathers uint8 images by index,
augments and normalises them in one batched call on the device. The gap between two
consecutive requests for a batch is one training iteration (data preparation included);
the stream records these gaps, so every method is timed the same way, whatever its loop. A
method that runs its own iterations instead of drawing batches marks each one with `lap`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from bench.train import timing
from methods.base import Batch


class BatchStream:
    """Shuffled mini-batches of (x, noisy y, index) over a device-resident training set."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        transform: Callable[..., torch.Tensor],
        generator: torch.Generator,
        before_step: Callable[[int, int], None] | None = None,
        with_index: bool = True,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.transform = transform
        self.generator = generator
        self.before_step = before_step
        self.with_index = with_index
        self.device = x.device
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
        self._last = timing.now(self.device)
        for step in range(steps):
            if self.before_step is not None:
                self.before_step(step, steps)
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            x = self.transform(self.x[index], train=True, generator=self.generator)
            yield Batch(x=x, y=self.y[index], index=index if self.with_index else None)
            self.lap()
