"""The streaming data path: images decoded and augmented off the training thread, batches prefetched to the device.

For datasets whose images are files (`ImageFiles`: Clothing1M, WebVision, ImageNet-LT, Places-LT),
`StreamingImages` gives methods the same interface as the device-resident path (`methods.base.Images`):
batches by training-set index, a per-sample pass in order, and the epoch's batches in turn. Whole
epochs and passes go through a persistent torch `DataLoader` whose workers decode (torchvision.io)
and crop/flip/jitter (torchvision.transforms.v2) each image to a uint8 tensor; batches come back in
pinned memory, are copied to the device one batch ahead (non-blocking) and normalised there.
Random batches drawn by a method (meta batches, DivideMix's views) are decoded by a thread pool.

Randomness: every training image gets a seed drawn from the run's generator when its batch is
planned, and its crop, flip and jitter are drawn from that seed alone, so a run's augmentation does
not depend on the number of workers or on which worker decoded the image.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from .images import ImageFiles, StreamTransforms

#: seeds of per-image augmentation are drawn below this bound
_SEED_BOUND = 2**62
#: the seed that asks for the evaluation transform (resize + centre crop)
EVAL = -1


def train_pipeline(t: StreamTransforms) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 3×H×W -> uint8 3×size×size: the train crop, flip and colour jitter of `t`."""
    from torchvision.transforms import v2

    if t.train_crop == "random-resized":
        steps: list[Any] = [v2.RandomResizedCrop(t.size, antialias=True)]
    else:
        steps = [v2.Resize(t.resize, antialias=True), v2.RandomCrop(t.size)]
    if t.flip:
        steps.append(v2.RandomHorizontalFlip())
    if t.color_jitter is not None:
        steps.append(v2.ColorJitter(*t.color_jitter))
    return v2.Compose(steps)


def eval_pipeline(t: StreamTransforms) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 3×H×W -> uint8 3×size×size: resize the short side, centre crop."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(t.resize, antialias=True), v2.CenterCrop(t.size)])


class DecodedImages(Dataset):
    """Item (i, seed): image i decoded and transformed; seed EVAL for the evaluation transform,
    else the seed of its random augmentation."""

    def __init__(self, files: ImageFiles, transforms: StreamTransforms) -> None:
        self.files, self.transforms = files, transforms
        self.train_tf, self.eval_tf = train_pipeline(transforms), eval_pipeline(transforms)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        i, seed = key
        return self.transform(self.files.decode(int(i)), seed)

    def transform(self, image: torch.Tensor, seed: int) -> torch.Tensor:
        """`image` through the evaluation transform (seed EVAL) or the train pipeline drawn from `seed`."""
        if seed == EVAL:
            return self.eval_tf(image)
        # the image's own draw, whatever thread or worker runs it; only the CPU generator is reseeded
        # (torch.manual_seed would reseed the CUDA generators too, and costs more)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(seed))
            return self.train_tf(image)


class _Plan:
    """The batch sampler of a persistent `DataLoader`: whichever batches were planned last."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StreamingImages:
    """`methods.base.Images` over image files: decoded by `workers` DataLoader processes (0: in the
    training process), normalised on `device` by `finish` (uint8 batch -> float batch)."""

    def __init__(self, files: ImageFiles, transforms: StreamTransforms, finish: Callable[[torch.Tensor], torch.Tensor],
                 device: torch.device, workers: int = 0, prefetch: int = 4) -> None:
        self.files, self.transforms, self.finish = files, transforms, finish
        self.device, self.workers, self.prefetch = device, workers, prefetch
        self.decoded = DecodedImages(files, transforms)
        self._plan = _Plan()
        self._loader: DataLoader | None = None
        self._threads: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.files)

    # --- what methods call ---------------------------------------------------------------
    def batch(self, index: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        keys = self._keys(index.cpu().tolist(), train, generator)
        if self.workers and len(keys) > 1:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="decode")
            images = list(self._threads.map(self.files.decode, [i for i, _ in keys]))  # decoding releases the GIL
        else:
            images = [self.files.decode(i) for i, _ in keys]
        # the random transforms draw from the process-wide generator (forked per image): one thread
        out = [self.decoded.transform(image, seed) for image, (_, seed) in zip(images, keys)]
        return self._to_device(torch.stack(out))

    def subset(self, index: torch.Tensor) -> "StreamingImages":
        return StreamingImages(self.files[index.cpu().numpy()], self.transforms, self.finish, self.device,
                               self.workers, self.prefetch)

    def in_order(self, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        n = len(self.files)
        batches = [torch.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        start = 0
        for x in self.iterate(batches, train=False):
            yield start, x
            start += len(x)

    def iterate(self, batches: Sequence[torch.Tensor], train: bool,
                generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """The batches in turn, decoded ahead by the workers and copied to the device one batch ahead."""
        sizes = [len(b) for b in batches]
        flat = torch.cat([b.cpu() for b in batches]).tolist() if batches else []
        keys = self._keys(flat, train, generator)  # every seed drawn now, in order
        planned, start = [], 0
        for size in sizes:
            planned.append(keys[start : start + size])
            start += size
        self._plan.batches = planned
        pending = None
        for cpu_batch in self.loader():
            moved = cpu_batch.to(self.device, non_blocking=True)
            if pending is not None:
                yield self.finish(pending)
            pending = moved
        if pending is not None:
            yield self.finish(pending)

    # --- machinery -----------------------------------------------------------------------
    def loader(self) -> DataLoader:
        """The persistent DataLoader over `_plan` (built on first use)."""
        if self._loader is None:
            workers = self.workers
            self._loader = DataLoader(
                self.decoded, batch_sampler=self._plan, num_workers=workers,
                pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                prefetch_factor=self.prefetch if workers > 0 else None,
            )
        return self._loader

    def _keys(self, index: list[int], train: bool, generator: torch.Generator | None) -> list[tuple[int, int]]:
        if not train:
            return [(i, EVAL) for i in index]
        seeds = torch.randint(0, _SEED_BOUND, (len(index),), generator=generator).tolist()
        return list(zip(index, seeds))

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        return self.finish(batch.to(self.device, non_blocking=True))

    def close(self) -> None:
        """Stop the worker processes and threads (they also stop when this object is collected)."""
        self._loader = None
        if self._threads is not None:
            self._threads.shutdown(wait=False)
            self._threads = None
